//! The label selector lexer and recursive-descent parser, mirroring apimachinery's grammar and error texts.

use super::{LabelOp, Requirement};
use crate::validation::names::{go_quote, label_value, qualified_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosedPar,
    Comma,
    Not,
    DoubleEquals,
    Equals,
    Greater,
    Identifier,
    In,
    Less,
    NotEquals,
    NotIn,
    OpenPar,
}

fn symbol(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b")" => Tok::ClosedPar,
        b"," => Tok::Comma,
        b"!" => Tok::Not,
        b"==" => Tok::DoubleEquals,
        b"=" => Tok::Equals,
        b">" => Tok::Greater,
        b"in" => Tok::In,
        b"<" => Tok::Less,
        b"!=" => Tok::NotEquals,
        b"notin" => Tok::NotIn,
        b"(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens, ending with `End`.
fn lex(input: &str) -> Vec<(Tok, String)> {
    let b = input.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < b.len() && is_space(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        let start = pos;
        if is_special(b[pos]) {
            // Longest run of special characters that still forms a known operator.
            let mut last: Option<(Tok, usize)> = None;
            while pos < b.len() && is_special(b[pos]) {
                pos += 1;
                match symbol(&b[start..pos]) {
                    Some(tok) => last = Some((tok, pos)),
                    None if last.is_some() => {
                        pos -= 1;
                        break;
                    }
                    None => {}
                }
            }
            match last {
                Some((tok, end)) => {
                    pos = end;
                    out.push((tok, input[start..end].to_string()));
                }
                None => out.push((
                    Tok::Error,
                    format!("error expected: keyword found '{}'", &input[start..pos]),
                )),
            }
        } else {
            while pos < b.len() && !is_special(b[pos]) && !is_space(b[pos]) {
                pos += 1;
            }
            let word = &input[start..pos];
            let tok = symbol(word.as_bytes()).unwrap_or(Tok::Identifier);
            out.push((tok, word.to_string()));
        }
    }
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

/// Whether `in`/`notin` count as plain identifiers (they do where values are expected).
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

impl Parser {
    fn item(&self, at: usize, ctx: Ctx) -> (Tok, String) {
        let (tok, lit) = self
            .items
            .get(at)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        match tok {
            Tok::In | Tok::NotIn if ctx == Ctx::Values => (Tok::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.item(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let item = self.item(self.pos, ctx);
        if self.pos < self.items.len() {
            self.pos += 1;
        }
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::Not => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::Not {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (mut tok, mut key) = self.consume(Ctx::Values);
        let mut negated = false;
        if tok == Tok::Not {
            negated = true;
            (tok, key) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{key}', expected: identifier"));
        }
        let errs = qualified_name(&key);
        if !errs.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                go_quote(&key),
                errs.join("; ")
            ));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if negated {
            return Ok(Requirement {
                key,
                op: LabelOp::DoesNotExist,
                values: Vec::new(),
            });
        }
        if matches!(next, Tok::End | Tok::Comma) {
            return Ok(Requirement {
                key,
                op: LabelOp::Exists,
                values: Vec::new(),
            });
        }
        let (op_tok, op_lit) = self.consume(Ctx::KeyAndOperator);
        let (op, values) = match op_tok {
            Tok::In => (LabelOp::In, self.set_values()?),
            Tok::NotIn => (LabelOp::NotIn, self.set_values()?),
            Tok::Equals | Tok::DoubleEquals => (LabelOp::In, self.exact_value()?),
            Tok::NotEquals => (LabelOp::NotIn, self.exact_value()?),
            Tok::Greater => (LabelOp::GreaterThan, self.exact_value()?),
            Tok::Less => (LabelOp::LessThan, self.exact_value()?),
            _ => {
                return Err(format!(
                    "found '{op_lit}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        };
        check_values(&key, op, &values)?;
        Ok(Requirement { key, op, values })
    }

    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let values = self.identifiers()?;
                if self.consume(Ctx::Values).0 != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(values)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// A possibly empty, comma-separated list of possibly empty identifiers, up to (not including) `)`.
    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    set.insert(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    match self.lookahead(Ctx::Values).0 {
                        Tok::ClosedPar => {
                            set.insert(String::new());
                            return Ok(set.into_iter().collect());
                        }
                        Tok::Comma => {
                            set.insert(String::new());
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead(Ctx::Values).0, Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume(Ctx::Values) {
            (Tok::Identifier, lit) => Ok(vec![lit]),
            (_, lit) => Err(format!("found '{lit}', expected: identifier")),
        }
    }
}

/// `NewRequirement`'s value checks: integers for gt/lt, valid label values otherwise.
fn check_values(key: &str, op: LabelOp, values: &[String]) -> Result<(), String> {
    let mut errs = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if matches!(op, LabelOp::GreaterThan | LabelOp::LessThan) && v.parse::<i64>().is_err() {
            errs.push(format!(
                "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                go_quote(v)
            ));
        }
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = label_value(v);
        if !msgs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(v),
                msgs.join("; ")
            ));
        }
    }
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}

/// Parses a label selector string into requirements (unsorted).
pub(super) fn parse(input: &str) -> Result<Vec<Requirement>, String> {
    Parser {
        items: lex(input),
        pos: 0,
    }
    .parse()
}
