//! The FHIRPath syntax tree produced by [`super::parse`]; cheap to clone and cache.

use super::value::Literal;

/// A parsed FHIRPath expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal: `true`, `'text'`, `1.5`, `@2012-04`, `4 'mg'`, or `{}` (empty).
    Literal(Literal),
    /// `$this`, `$index` or `$total`.
    Special(Special),
    /// `%name`: an environment variable.
    Variable(String),
    /// A member name; `target` is `None` when it starts a path (navigation from `$this`).
    Member { target: Option<Box<Expr>>, name: String },
    /// A function call, with `target` `None` when called on `$this`.
    Call { target: Option<Box<Expr>>, name: String, args: Vec<Expr> },
    /// `target[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// Unary `-` (`negate`) or `+`.
    Negate(Box<Expr>),
    /// A binary operator.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `expr is Type` (`is_as` false) or `expr as Type` (`is_as` true).
    Type { expr: Box<Expr>, spec: TypeSpec, is_as: bool },
}

/// `$this`, `$index`, `$total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    This,
    Index,
    Total,
}

/// A type name with an optional namespace (`FHIR.Patient`, `System.String`, `Quantity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    pub namespace: Option<String>,
    pub name: String,
}

/// Binary operators, lowest precedence last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}
