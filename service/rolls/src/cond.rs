//! The condition language of `arch=`, `os=`, `release=` and `cond=` on edges and node-file
//! elements. Rocks `eval`s `cond=` as Python over the host attributes; we parse the subset Rocks
//! rolls use in practice (and/or/not, comparisons, `is [not] None`, `in`, literals, parentheses)
//! into a tree once, at load time, and evaluate it with the same value rules as Rocks' `_CondEnv`.

use std::cmp::Ordering;

use crate::attrs::Attributes;
use crate::error::CondError;

/// Longest `cond=` text accepted, and deepest nesting: both bound the recursive-descent parser.
const MAX_COND_LEN: usize = 4096;
const MAX_COND_DEPTH: usize = 64;

/// A value as Rocks' `_CondEnv` sees an attribute: unknown → `None`, yes/no words → booleans,
/// numbers → numbers, anything else a string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
}

impl Value {
    /// Converts an attribute's text the way `_CondEnv.__getitem__` does.
    pub(crate) fn from_attribute(text: &str) -> Value {
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "on" | "true" | "yes" | "y" => return Value::Bool(true),
            "off" | "false" | "no" | "n" => return Value::Bool(false),
            _ => {}
        }
        let trimmed = text.trim();
        if let Ok(i) = trimmed.parse::<i64>() {
            return Value::Int(i);
        }
        // Python's float() also accepts "inf"/"nan" words; Rust's parse does too, which is fine.
        if let Ok(f) = trimmed.parse::<f64>() {
            return Value::Float(f);
        }
        Value::Str(text.to_string())
    }

    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Tuple(t) => !t.is_empty(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            #[allow(clippy::cast_precision_loss)] // attribute numbers are small
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (a, b) => matches!((a.number(), b.number()), (Some(x), Some(y)) if x == y),
        }
    }

    /// Python 2 ordering: None below numbers below strings, so `None >= 7` is false rather
    /// than an error (Rocks relies on that for unset attributes).
    fn compare(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::None => 0,
                Value::Bool(_) | Value::Int(_) | Value::Float(_) => 1,
                Value::Str(_) => 2,
                Value::Tuple(_) => 3,
            }
        }
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (a, b) => match (a.number(), b.number()) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => rank(a).cmp(&rank(b)),
            },
        }
    }

    fn contains(&self, needle: &Value) -> bool {
        match (self, needle) {
            (Value::Str(hay), Value::Str(n)) => hay.contains(n.as_str()),
            (Value::Tuple(items), n) => items.iter().any(|i| i.equals(n)),
            _ => false,
        }
    }
}

/// A comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Is,
    IsNot,
    In,
    NotIn,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Literal(Value),
    Attribute(String),
    Tuple(Vec<Cond>),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    /// A comparison chain `a < b <= c`, true when every link holds (as in Python).
    Compare(Box<Cond>, Vec<(CmpOp, Cond)>),
}

impl Cond {
    pub(crate) fn parse(text: &str) -> Result<Cond, CondError> {
        let fail = |column: usize, reason: &str| CondError {
            text: text.to_string(),
            column,
            reason: reason.to_string(),
        };
        if text.len() > MAX_COND_LEN {
            return Err(fail(MAX_COND_LEN, "condition too long"));
        }
        let tokens = tokenize(text).map_err(|(c, r)| fail(c, &r))?;
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            depth: 0,
            end: text.len(),
        };
        let cond = parser.or().map_err(|(c, r)| fail(c, &r))?;
        match parser.peek() {
            None => Ok(cond),
            Some((c, t)) => Err(fail(*c, &format!("unexpected {t:?}"))),
        }
    }

    /// The old-style `arch="a,b"` (and `os=`, `release=`) list: true when the attribute equals
    /// any item. `None` for an empty list, which Rocks treats as no restriction.
    pub(crate) fn any_of(attribute: &str, list: &str) -> Option<Cond> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .fold(None, |acc, item| {
                let eq = Cond::Compare(
                    Box::new(Cond::Attribute(attribute.to_string())),
                    vec![(CmpOp::Eq, Cond::Literal(Value::Str(item.to_string())))],
                );
                Some(match acc {
                    None => eq,
                    Some(prev) => Cond::Or(Box::new(prev), Box::new(eq)),
                })
            })
    }

    /// ANDs two optional conditions (absent means always true).
    pub(crate) fn and(a: Option<Cond>, b: Option<Cond>) -> Option<Cond> {
        match (a, b) {
            (Some(a), Some(b)) => Some(Cond::And(Box::new(a), Box::new(b))),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn holds(&self, attrs: &Attributes) -> bool {
        self.value(attrs).truthy()
    }

    fn value(&self, attrs: &Attributes) -> Value {
        match self {
            Cond::Literal(v) => v.clone(),
            Cond::Attribute(name) => attrs
                .get(name)
                .map_or(Value::None, |v| Value::from_attribute(v)),
            Cond::Tuple(items) => Value::Tuple(items.iter().map(|i| i.value(attrs)).collect()),
            Cond::Not(c) => Value::Bool(!c.value(attrs).truthy()),
            Cond::And(a, b) => {
                let left = a.value(attrs);
                if left.truthy() {
                    b.value(attrs)
                } else {
                    left
                }
            }
            Cond::Or(a, b) => {
                let left = a.value(attrs);
                if left.truthy() {
                    left
                } else {
                    b.value(attrs)
                }
            }
            Cond::Compare(first, rest) => {
                let mut left = first.value(attrs);
                for (op, next) in rest {
                    let right = next.value(attrs);
                    let ok = match op {
                        CmpOp::Eq | CmpOp::Is => left.equals(&right),
                        CmpOp::Ne | CmpOp::IsNot => !left.equals(&right),
                        CmpOp::Lt => left.compare(&right) == Ordering::Less,
                        CmpOp::Le => left.compare(&right) != Ordering::Greater,
                        CmpOp::Gt => left.compare(&right) == Ordering::Greater,
                        CmpOp::Ge => left.compare(&right) != Ordering::Less,
                        CmpOp::In => right.contains(&left),
                        CmpOp::NotIn => !right.contains(&left),
                    };
                    if !ok {
                        return Value::Bool(false);
                    }
                    left = right;
                }
                Value::Bool(true)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Str(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, (usize, String)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&(col, c)) = chars.get(i) {
        let next = chars.get(i + 1).map(|&(_, c)| c);
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((col, Token::LParen));
                i += 1;
            }
            ')' => {
                out.push((col, Token::RParen));
                i += 1;
            }
            ',' => {
                out.push((col, Token::Comma));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let op = match (c, next) {
                    ('=', Some('=')) => "==",
                    ('!', Some('=')) => "!=",
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', Some('>')) => "!=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err((col, format!("unexpected {c:?}"))),
                };
                out.push((col, Token::Op(op)));
                i += if op.len() == 2 { 2 } else { 1 };
            }
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err((col, "unterminated string".to_string())),
                        Some(&(_, q)) if q == c => break,
                        Some(&(_, '\\')) => {
                            let Some(&(_, e)) = chars.get(i + 1) else {
                                return Err((col, "unterminated string".to_string()));
                            };
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                            i += 2;
                            continue;
                        }
                        Some(&(_, ch)) => s.push(ch),
                    }
                    i += 1;
                }
                i += 1;
                out.push((col, Token::Str(s)));
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|&(_, d)| d.is_ascii_alphanumeric() || d == '.')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().map(|&(_, c)| c).collect();
                let token = if let Ok(n) = word.parse::<i64>() {
                    Token::Int(n)
                } else if let Ok(f) = word.parse::<f64>() {
                    Token::Float(f)
                } else {
                    return Err((col, format!("bad number {word:?}")));
                };
                out.push((col, token));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|&(_, d)| d.is_alphanumeric() || d == '_')
                {
                    i += 1;
                }
                out.push((
                    col,
                    Token::Name(chars[start..i].iter().map(|&(_, c)| c).collect()),
                ));
            }
            other => return Err((col, format!("unexpected {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser<'t> {
    tokens: &'t [(usize, Token)],
    pos: usize,
    depth: usize,
    /// The column just past the text, where "ends too early" is reported.
    end: usize,
}

type ParseResult = Result<Cond, (usize, String)>;

impl Parser<'_> {
    fn peek(&self) -> Option<&(usize, Token)> {
        self.tokens.get(self.pos)
    }

    fn column(&self) -> usize {
        self.peek().map_or(self.end, |(c, _)| *c)
    }

    fn eat_name(&mut self, word: &str) -> bool {
        let hit = matches!(self.peek(), Some((_, Token::Name(n))) if n == word);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn descend(&mut self) -> Result<(), (usize, String)> {
        self.depth += 1;
        if self.depth > MAX_COND_DEPTH {
            return Err((self.column(), "nested too deeply".to_string()));
        }
        Ok(())
    }

    fn or(&mut self) -> ParseResult {
        let mut left = self.and()?;
        while self.eat_name("or") {
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> ParseResult {
        let mut left = self.not()?;
        while self.eat_name("and") {
            left = Cond::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> ParseResult {
        if self.eat_name("not") {
            self.descend()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> ParseResult {
        let first = self.primary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Some((_, Token::Op(op))) => {
                    let op = match *op {
                        "==" => CmpOp::Eq,
                        "!=" => CmpOp::Ne,
                        "<" => CmpOp::Lt,
                        "<=" => CmpOp::Le,
                        ">" => CmpOp::Gt,
                        _ => CmpOp::Ge,
                    };
                    self.pos += 1;
                    op
                }
                Some((_, Token::Name(n))) if n == "is" => {
                    self.pos += 1;
                    if self.eat_name("not") {
                        CmpOp::IsNot
                    } else {
                        CmpOp::Is
                    }
                }
                Some((_, Token::Name(n))) if n == "in" => {
                    self.pos += 1;
                    CmpOp::In
                }
                Some((_, Token::Name(n)))
                    if n == "not"
                        && matches!(self.tokens.get(self.pos + 1), Some((_, Token::Name(m))) if m == "in") =>
                {
                    self.pos += 2;
                    CmpOp::NotIn
                }
                _ => break,
            };
            rest.push((op, self.primary()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Cond::Compare(Box::new(first), rest)
        })
    }

    fn primary(&mut self) -> ParseResult {
        let column = self.column();
        let Some((_, token)) = self.tokens.get(self.pos) else {
            return Err((column, "expression ends too early".to_string()));
        };
        self.pos += 1;
        match token {
            Token::Str(s) => Ok(Cond::Literal(Value::Str(s.clone()))),
            Token::Int(i) => Ok(Cond::Literal(Value::Int(*i))),
            Token::Float(f) => Ok(Cond::Literal(Value::Float(*f))),
            Token::Name(n) => match n.as_str() {
                "True" => Ok(Cond::Literal(Value::Bool(true))),
                "False" => Ok(Cond::Literal(Value::Bool(false))),
                "None" => Ok(Cond::Literal(Value::None)),
                "and" | "or" | "not" | "is" | "in" => {
                    Err((column, format!("unexpected keyword {n:?}")))
                }
                _ => Ok(Cond::Attribute(n.clone())),
            },
            Token::LParen => {
                self.descend()?;
                let mut items = Vec::new();
                let mut trailing_comma = false;
                while !matches!(self.peek(), Some((_, Token::RParen))) {
                    items.push(self.or()?);
                    trailing_comma = matches!(self.peek(), Some((_, Token::Comma)));
                    if trailing_comma {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                if !matches!(self.peek(), Some((_, Token::RParen))) {
                    return Err((self.column(), "expected ')'".to_string()));
                }
                self.pos += 1;
                self.depth -= 1;
                match (items.len(), trailing_comma) {
                    (1, false) => Ok(items.remove(0)),
                    _ => Ok(Cond::Tuple(items)),
                }
            }
            other => Err((column, format!("unexpected {other:?}"))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn holds(cond: &str, pairs: &[(&str, &str)]) -> bool {
        Cond::parse(cond).unwrap().holds(&attrs(pairs))
    }

    #[test]
    fn every_condition_form_of_the_real_rolls() {
        let v7 = [
            ("rocks_version_major", "7"),
            ("version", "7.0"),
            ("appliance", "compute"),
            ("os_version_major", "7"),
        ];
        assert!(holds("rocks_version_major == 7", &v7));
        assert!(!holds("rocks_version_major == 6", &v7));
        assert!(holds("rocks_version_major==7", &v7));
        assert!(holds("version >= 7", &v7));
        assert!(holds(" version >= 7", &v7));
        assert!(!holds("not (version >= 7)", &v7));
        assert!(holds("rocks_version_major > 6", &v7));
        assert!(holds("rocks_version_major > 5", &v7));
        assert!(holds("appliance != 'devel-server'", &v7));
        assert!(!holds("os_version_major == 6", &v7));
        assert!(!holds("x11", &v7));
        assert!(holds("x11", &[("x11", "yes")]));
        assert!(!holds("fail2ban", &[("fail2ban", "off")]));
        assert!(holds("not slimcore", &v7));
        assert!(holds("rocks_version_major == 7 and not UseTracker", &v7));
        assert!(holds(
            "rocks_version_major == 7 and UseTracker",
            &[("rocks_version_major", "7"), ("UseTracker", "true")]
        ));
        assert!(holds(
            "rocks_version_major >= 6 and Bootloader is None",
            &v7
        ));
        assert!(!holds("Bootloader is not None", &v7));
        assert!(holds(
            "Bootloader is not None",
            &[("Bootloader", "--location=mbr")]
        ));
        assert!(holds("not ssh_use_dns", &[("ssh_use_dns", "false")]));
    }

    #[test]
    fn python_rules_for_mixed_values() {
        assert!(!holds("missing >= 7", &[]));
        assert!(holds("arch in ('i386', 'x86_64')", &[("arch", "x86_64")]));
        assert!(holds("arch not in ('i386',)", &[("arch", "x86_64")]));
        assert!(holds("1 < n <= 3", &[("n", "3")]));
        assert!(!holds("1 < n <= 3", &[("n", "4")]));
        assert!(holds("flag == True", &[("flag", "yes")]));
        assert!(holds("name == \"a b\" or x", &[("name", "a b")]));
        assert!(
            !holds("version == '7'", &[("version", "7")]),
            "an int attribute never equals a string"
        );
    }

    #[test]
    fn old_style_lists() {
        let c = Cond::any_of("arch", "i386, x86_64").unwrap();
        assert!(c.holds(&attrs(&[("arch", "x86_64")])));
        assert!(!c.holds(&attrs(&[("arch", "aarch64")])));
        assert!(Cond::any_of("arch", " , ").is_none());
    }

    #[test]
    fn refuses_what_is_not_a_condition() {
        for bad in [
            "",
            "a ==",
            "(a",
            "a b",
            "__import__('os').system('x')",
            "a = 1",
            "'open",
            "not",
            "a and",
            "1 +",
        ] {
            assert!(Cond::parse(bad).is_err(), "{bad:?}");
        }
        let deep = "(".repeat(100) + "a" + &")".repeat(100);
        assert!(Cond::parse(&deep).is_err());
        assert_eq!(Cond::parse("a ==").unwrap_err().column, 4);
    }
}
