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
    /// A NULL text.
    Null,
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

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
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

/// The statement's parameters for any sqlx database. Its text is safe to run as is: this crate
/// writes only table and column names of its own into it, and every value is a parameter.
pub fn arguments<DB>(sql: &Sql) -> Result<DB::Arguments, sqlx::error::BoxDynError>
where
    DB: sqlx::Database,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> f64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    use sqlx::Arguments as _;
    let mut arguments = DB::Arguments::default();
    for value in &sql.binds {
        match value {
            Bind::Text(s) => arguments.add(s.clone())?,
            Bind::Real(n) => arguments.add(*n)?,
            Bind::Int(n) => arguments.add(*n)?,
            Bind::Null => arguments.add(None::<String>)?,
        }
    }
    Ok(arguments)
}
