//! The FHIRPath function library, one file per group of the specification, dispatched by name.

mod combining;
mod conversion;
mod encoding;
mod existence;
mod fhir;
mod filtering;
mod math;
mod string;
mod subsetting;
mod tree;
mod utility;

use super::ast::{Expr, TypeSpec};
use super::error::{FhirPathError, Result};
use super::eval::{Ctx, Frame};
use super::value::Item;

/// What a function is called with: the context, its focus (the collection it is invoked on),
/// its unevaluated arguments and the input they are evaluated on.
pub(crate) struct Call<'c, 'a, 'e> {
    pub ctx: &'c Ctx<'a, 'e>,
    pub name: &'c str,
    pub focus: Vec<Item<'a>>,
    pub args: &'c [Expr],
    pub input: &'c [Item<'a>],
    pub frame: &'c Frame<'a>,
    /// Whether the function was invoked on an explicit focus (`x.f()`, not `f()`).
    pub has_target: bool,
}

type Output<'a> = Result<Vec<Item<'a>>>;

/// Calls the function `name`.
pub(crate) fn call<'a>(
    ctx: &Ctx<'a, '_>,
    name: &str,
    focus: Vec<Item<'a>>,
    args: &[Expr],
    input: &[Item<'a>],
    frame: &Frame<'a>,
    has_target: bool,
) -> Output<'a> {
    let call = Call { ctx, name, focus, args, input, frame, has_target };
    if let Some(result) = existence::call(&call) {
        return result;
    }
    for group in [
        filtering::call,
        subsetting::call,
        combining::call,
        conversion::call,
        encoding::call,
        string::call,
        math::call,
        tree::call,
        utility::call,
        fhir::call,
    ] {
        if let Some(result) = group(&call) {
            return result;
        }
    }
    Err(FhirPathError::unsupported(format!("unknown function `{name}()`")))
}

impl<'a> Call<'_, 'a, '_> {
    /// Fails unless the call has between `min` and `max` arguments.
    pub(super) fn arity(&self, min: usize, max: usize) -> Result<()> {
        let n = self.args.len();
        if n < min || n > max {
            return Err(FhirPathError::eval(format!("`{}()` takes {min} to {max} arguments, got {n}", self.name)));
        }
        Ok(())
    }

    /// Evaluates argument `i` on the input of the expression.
    pub(super) fn arg(&self, i: usize) -> Output<'a> {
        match self.args.get(i) {
            Some(expr) => self.ctx.eval(expr, self.input, self.frame),
            None => Err(FhirPathError::eval(format!("`{}()` is missing argument {}", self.name, i + 1))),
        }
    }

    /// Evaluates argument `i` with `item` as `$this` (for `where`, `select`, `all`...).
    pub(super) fn lambda(&self, i: usize, item: &Item<'a>, index: usize) -> Output<'a> {
        let Some(expr) = self.args.get(i) else {
            return Err(FhirPathError::eval(format!("`{}()` is missing argument {}", self.name, i + 1)));
        };
        let frame = Frame { this: Some(item.clone()), index: Some(index), total: self.frame.total.clone() };
        self.ctx.eval(expr, std::slice::from_ref(item), &frame)
    }

    /// Argument `i` as a single string (`None` when empty).
    pub(super) fn string_arg(&self, i: usize) -> Result<Option<String>> {
        let items = self.arg(i)?;
        match super::operators::singleton(&items)?.as_deref() {
            None => Ok(None),
            Some(Item::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(FhirPathError::eval(format!("`{}()` needs a string argument", self.name))),
        }
    }

    /// Argument `i` as a single integer (`None` when empty).
    pub(super) fn integer_arg(&self, i: usize) -> Result<Option<i64>> {
        let items = self.arg(i)?;
        match super::operators::singleton(&items)?.as_deref() {
            None => Ok(None),
            Some(Item::Integer(n)) => Ok(Some(*n)),
            Some(_) => Err(FhirPathError::eval(format!("`{}()` needs an integer argument", self.name))),
        }
    }

    /// Argument `i` read as a type name (`Quantity`, `FHIR.Patient`, `System.String`).
    pub(super) fn type_arg(&self, i: usize) -> Result<TypeSpec> {
        match self.args.get(i) {
            Some(Expr::Member { target: None, name }) => Ok(TypeSpec { namespace: None, name: name.clone() }),
            Some(Expr::Member { target: Some(ns), name }) => match ns.as_ref() {
                Expr::Member { target: None, name: namespace } => {
                    Ok(TypeSpec { namespace: Some(namespace.clone()), name: name.clone() })
                }
                _ => Err(FhirPathError::eval(format!("`{}()` needs a type name", self.name))),
            },
            _ => Err(FhirPathError::eval(format!("`{}()` needs a type name", self.name))),
        }
    }

    /// The focus as a single System value (`None` when empty).
    pub(super) fn single(&self) -> Result<Option<Item<'a>>> {
        Ok(super::operators::singleton(&self.focus)?.map(std::borrow::Cow::into_owned))
    }
}

fn boolean<'a>(b: bool) -> Output<'a> {
    Ok(vec![Item::Boolean(b)])
}
