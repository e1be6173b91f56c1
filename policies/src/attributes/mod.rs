//! The attributes of a resource entity: those every resource has, declared once ([`common`]),
//! and one per search parameter of its type ([`params`]), typed, filled from the engine's own
//! index extraction ([`values`]) for the parameters the loaded policies read ([`wanted`]).

pub(crate) mod common;
pub(crate) mod params;
pub(crate) mod values;
pub(crate) mod wanted;
