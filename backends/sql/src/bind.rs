//! A statement with its parameters, and the dialect that decides how parameters are written.

/// The SQL dialect of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?1`, `?2`...
    Sqlite,
    /// `$1`, `$2`...
    Postgres,
}

/// A value bound to a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Real(f64),
    Int(i64),
}

/// A statement and the values of its numbered parameters, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

/// Builds a statement's parameter list while its text is assembled.
#[derive(Debug)]
pub(crate) struct Binder {
    dialect: Dialect,
    pub(crate) binds: Vec<Bind>,
}

impl Binder {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self { dialect, binds: Vec::new() }
    }

    /// Adds a parameter and returns its placeholder.
    pub(crate) fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.binds.len()),
            Dialect::Postgres => format!("${}", self.binds.len()),
        }
    }

    pub(crate) fn text(&mut self, value: &str) -> String {
        self.bind(Bind::Text(value.to_owned()))
    }

    /// A parenthesised list of text parameters, for `IN`.
    pub(crate) fn list(&mut self, values: &[String]) -> String {
        let placeholders: Vec<String> = values.iter().map(|v| self.text(v)).collect();
        format!("({})", placeholders.join(", "))
    }
}
