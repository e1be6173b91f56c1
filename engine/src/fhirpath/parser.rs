//! A precedence-climbing parser from tokens to [`Expr`], with the operator precedence of the
//! FHIRPath N1 grammar (from tightest: `.`/`[]`, unary, `* / div mod`, `+ - &`, `is as`, `|`,
//! `< > <= >=`, `= ~ != !~`, `in contains`, `and`, `or xor`, `implies`).

use super::ast::{BinaryOp, Expr, Special, TypeSpec};
use super::decimal::Decimal;
use super::error::{FhirPathError, Result};
use super::lexer::{Token, tokenize};
use super::temporal::{Temporal, TemporalKind};
use super::value::Literal;

/// Nesting depth (parentheses, arguments, operands of tighter operators) above which parsing
/// stops, so hostile input cannot overflow the stack: a debug build spends about 11 KB of stack
/// per level, and the server's threads have 2 MB.
const MAX_DEPTH: usize = 64;
/// Depth of the expression tree: a chain `a.b.c` nests as deeply as parentheses do, and
/// evaluating or dropping the tree recurses that deep. Evaluation refuses deeper trees anyway.
const MAX_TREE_DEPTH: usize = super::eval::MAX_DEPTH;
/// Operators and `.`/`[]` steps in one chain (`a.b.c...`, `1 + 1 + ...`): chains nest the tree
/// as deeply as parentheses do, and evaluating or dropping it recurses that deep.
const MAX_CHAIN: usize = 1000;

/// Parses a FHIRPath expression.
pub fn parse(input: &str) -> Result<Expr> {
    let tokens = tokenize(input)?;
    let mut parser = Parser { tokens, pos: 0, depth: 0 };
    let (expr, _) = parser.expression(0)?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(FhirPathError::syntax(format!("unexpected `{}`", describe(token)))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// The depth of a node `depth` deep, failing beyond [`MAX_TREE_DEPTH`].
fn tree(depth: usize) -> Result<usize> {
    if depth > MAX_TREE_DEPTH {
        return Err(FhirPathError::syntax("expression nested too deeply"));
    }
    Ok(depth)
}

fn chain_step(steps: &mut usize) -> Result<()> {
    *steps += 1;
    if *steps > MAX_CHAIN {
        return Err(FhirPathError::syntax("expression chain too long"));
    }
    Ok(())
}

/// Binding power of an infix operator token.
fn infix(token: &Token) -> Option<(u8, Infix)> {
    let word = match token {
        Token::Symbol(s) => *s,
        Token::Ident(s) => s.as_str(),
        _ => return None,
    };
    use BinaryOp::*;
    Some(match word {
        "implies" => (1, Infix::Op(Implies)),
        "or" => (2, Infix::Op(Or)),
        "xor" => (2, Infix::Op(Xor)),
        "and" => (3, Infix::Op(And)),
        "in" => (4, Infix::Op(In)),
        "contains" => (4, Infix::Op(Contains)),
        "=" => (5, Infix::Op(Eq)),
        "!=" => (5, Infix::Op(Ne)),
        "~" => (5, Infix::Op(Equiv)),
        "!~" => (5, Infix::Op(NotEquiv)),
        "<" => (6, Infix::Op(Lt)),
        ">" => (6, Infix::Op(Gt)),
        "<=" => (6, Infix::Op(Le)),
        ">=" => (6, Infix::Op(Ge)),
        "|" => (7, Infix::Op(Union)),
        "is" => (8, Infix::Is),
        "as" => (8, Infix::As),
        "+" => (9, Infix::Op(Add)),
        "-" => (9, Infix::Op(Sub)),
        "&" => (9, Infix::Op(Concat)),
        "*" => (10, Infix::Op(Mul)),
        "/" => (10, Infix::Op(Div)),
        "div" => (10, Infix::Op(IntDiv)),
        "mod" => (10, Infix::Op(Mod)),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Infix {
    Op(BinaryOp),
    Is,
    As,
}

const CALENDAR_UNITS: [&str; 16] = [
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
];

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn eat(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, symbol: &str) -> Result<()> {
        if self.eat(symbol) {
            Ok(())
        } else {
            let found = self.peek().map_or_else(|| "end of expression".to_owned(), describe);
            Err(FhirPathError::syntax(format!("expected `{symbol}`, found `{found}`")))
        }
    }

    /// An expression and the depth of its tree (as every parsing function returns).
    fn expression(&mut self, min: u8) -> Result<(Expr, usize)> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FhirPathError::syntax("expression nested too deeply"));
        }
        let (mut left, mut depth) = self.unary()?;
        let mut steps = 0;
        while let Some((power, op)) = self.peek().and_then(infix) {
            if power <= min {
                break;
            }
            chain_step(&mut steps)?;
            self.pos += 1;
            left = match op {
                Infix::Op(op) => {
                    let (right, right_depth) = self.expression(power)?;
                    depth = tree(1 + depth.max(right_depth))?;
                    Expr::Binary(op, Box::new(left), Box::new(right))
                }
                Infix::Is | Infix::As => {
                    let spec = self.type_spec()?;
                    depth = tree(depth + 1)?;
                    Expr::Type { expr: Box::new(left), spec, is_as: matches!(op, Infix::As) }
                }
            };
        }
        self.depth -= 1;
        Ok((left, depth))
    }

    fn type_spec(&mut self) -> Result<TypeSpec> {
        let first = self.name()?;
        if self.eat(".") {
            let name = self.name()?;
            return Ok(TypeSpec { namespace: Some(first), name });
        }
        Ok(TypeSpec { namespace: None, name: first })
    }

    fn name(&mut self) -> Result<String> {
        match self.next() {
            Some(Token::Ident(name) | Token::Quoted(name)) => Ok(name),
            Some(other) => Err(FhirPathError::syntax(format!("expected a name, found `{}`", describe(&other)))),
            None => Err(FhirPathError::syntax("expected a name, found end of expression")),
        }
    }

    fn unary(&mut self) -> Result<(Expr, usize)> {
        // Iterative, so `- - - ... x` cannot recurse without bound.
        let (mut negations, mut steps) = (0, 0);
        loop {
            if self.eat("-") {
                negations += 1;
            } else if !self.eat("+") {
                break;
            }
            chain_step(&mut steps)?;
        }
        let (mut expr, mut depth) = self.postfix()?;
        for _ in 0..negations {
            depth = tree(depth + 1)?;
            expr = Expr::Negate(Box::new(expr));
        }
        Ok((expr, depth))
    }

    fn postfix(&mut self) -> Result<(Expr, usize)> {
        let (mut expr, mut depth) = self.term()?;
        let mut steps = 0;
        loop {
            chain_step(&mut steps)?;
            if self.eat(".") {
                let name = self.name()?;
                (expr, depth) = self.invocation(Some((expr, depth)), name)?;
            } else if self.eat("[") {
                let (index, index_depth) = self.expression(0)?;
                self.expect("]")?;
                depth = tree(1 + depth.max(index_depth))?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok((expr, depth));
            }
        }
    }

    fn invocation(&mut self, target: Option<(Expr, usize)>, name: String) -> Result<(Expr, usize)> {
        let mut depth = target.as_ref().map_or(0, |(_, d)| *d);
        let target = target.map(|(t, _)| Box::new(t));
        if !self.eat("(") {
            return Ok((Expr::Member { target, name }, tree(depth + 1)?));
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                let (arg, arg_depth) = self.expression(0)?;
                depth = depth.max(arg_depth);
                args.push(arg);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok((Expr::Call { target, name, args }, tree(depth + 1)?))
    }

    fn term(&mut self) -> Result<(Expr, usize)> {
        let token = self.next().ok_or_else(|| FhirPathError::syntax("unexpected end of expression"))?;
        Ok((
            match token {
                Token::Symbol("(") => {
                    let inner = self.expression(0)?;
                    self.expect(")")?;
                    return Ok(inner);
                }
                Token::Symbol("{") => {
                    self.expect("}")?;
                    Expr::Literal(Literal::Empty)
                }
                Token::Ident(word) if word == "true" || word == "false" => {
                    Expr::Literal(Literal::Boolean(word == "true"))
                }
                Token::Ident(name) | Token::Quoted(name) => return self.invocation(None, name),
                Token::Str(s) => Expr::Literal(Literal::String(s)),
                Token::Number(text) => self.number(&text)?,
                Token::DateTime(text) => {
                    let kind = if text.contains('T') { TemporalKind::DateTime } else { TemporalKind::Date };
                    let value = Temporal::parse(&text, kind)
                        .ok_or_else(|| FhirPathError::syntax(format!("invalid date/time literal `@{text}`")))?;
                    Expr::Literal(Literal::Temporal(value))
                }
                Token::Time(text) => {
                    let value = Temporal::parse(&text, TemporalKind::Time)
                        .ok_or_else(|| FhirPathError::syntax(format!("invalid time literal `@T{text}`")))?;
                    Expr::Literal(Literal::Temporal(value))
                }
                Token::Variable(name) => Expr::Variable(name),
                Token::Special(name) => Expr::Special(match name.as_str() {
                    "this" => Special::This,
                    "index" => Special::Index,
                    "total" => Special::Total,
                    _ => return Err(FhirPathError::syntax(format!("unknown `${name}`"))),
                }),
                Token::Symbol(s) => return Err(FhirPathError::syntax(format!("unexpected `{s}`"))),
            },
            1,
        ))
    }

    fn number(&mut self, text: &str) -> Result<Expr> {
        let value = Decimal::parse(text).ok_or_else(|| FhirPathError::syntax(format!("invalid number `{text}`")))?;
        let unit = match self.peek() {
            Some(Token::Str(unit)) => Some(unit.clone()),
            Some(Token::Ident(word)) if CALENDAR_UNITS.contains(&word.as_str()) => Some(word.clone()),
            _ => None,
        };
        if let Some(unit) = unit {
            self.pos += 1;
            return Ok(Expr::Literal(Literal::Quantity(value, unit)));
        }
        if text.contains('.') {
            return Ok(Expr::Literal(Literal::Decimal(value)));
        }
        match text.parse::<i64>() {
            Ok(i) => Ok(Expr::Literal(Literal::Integer(i))),
            Err(_) => Err(FhirPathError::syntax(format!("integer `{text}` is too large"))),
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Ident(s) | Token::Number(s) => s.clone(),
        Token::Quoted(s) => format!("`{s}`"),
        Token::Str(s) => format!("'{s}'"),
        Token::DateTime(s) => format!("@{s}"),
        Token::Time(s) => format!("@T{s}"),
        Token::Variable(s) => format!("%{s}"),
        Token::Special(s) => format!("${s}"),
        Token::Symbol(s) => (*s).to_owned(),
    }
}
