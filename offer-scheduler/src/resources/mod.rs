//! Mesos resources: named scalars/ranges/sets with reservations, and the `Resources` collection.

mod json;
pub use json::ports_of;
mod parse;
mod ranges;
mod scalar;

use std::collections::BTreeSet;
use std::fmt;

pub use parse::ParseError;
pub use ranges::Ranges;
pub use scalar::Scalar;

/// The role of unreserved resources.
pub const UNRESERVED: &str = "*";

/// A resource's value (Mesos `Value.Type`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// `SCALAR`, fixed-point.
    Scalar(Scalar),
    /// `RANGES`.
    Ranges(Ranges),
    /// `SET`.
    Set(BTreeSet<String>),
}

impl Value {
    fn kind(&self) -> u8 {
        match self {
            Value::Scalar(_) => 0,
            Value::Ranges(_) => 1,
            Value::Set(_) => 2,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Value::Scalar(s) => !s.is_positive(),
            Value::Ranges(r) => r.is_empty(),
            Value::Set(s) => s.is_empty(),
        }
    }

    fn add(&self, o: &Value) -> Value {
        match (self, o) {
            (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(*a + *b),
            (Value::Ranges(a), Value::Ranges(b)) => Value::Ranges(a.merge(b)),
            (Value::Set(a), Value::Set(b)) => Value::Set(a.union(b).cloned().collect()),
            _ => self.clone(),
        }
    }

    fn subtract(&self, o: &Value) -> Value {
        match (self, o) {
            (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(*a - *b),
            (Value::Ranges(a), Value::Ranges(b)) => Value::Ranges(a.subtract(b)),
            (Value::Set(a), Value::Set(b)) => Value::Set(a.difference(b).cloned().collect()),
            _ => self.clone(),
        }
    }

    fn contains(&self, o: &Value) -> bool {
        match (self, o) {
            (Value::Scalar(a), Value::Scalar(b)) => a >= b,
            (Value::Ranges(a), Value::Ranges(b)) => a.contains(b),
            (Value::Set(a), Value::Set(b)) => a.is_superset(b),
            _ => false,
        }
    }
}

/// Static (agent `--resources`) or dynamic (RESERVE operation) reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReservationKind {
    /// `STATIC`.
    Static,
    /// `DYNAMIC`.
    Dynamic,
}

/// One entry of a refined reservation stack (Mesos `Resource.ReservationInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reservation {
    /// Static or dynamic.
    pub kind: ReservationKind,
    /// The role reserved for.
    pub role: String,
    /// Principal that made a dynamic reservation.
    pub principal: Option<String>,
}

/// One named resource with its reservation stack (empty = unreserved `*`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource {
    /// e.g. `cpus`, `mem`, `ports`.
    pub name: String,
    /// The amount.
    pub value: Value,
    /// Reservation stack, outermost (least specific) first.
    pub reservations: Vec<Reservation>,
}

impl Resource {
    /// An unreserved scalar.
    pub fn scalar(name: &str, v: Scalar) -> Resource {
        Resource {
            name: name.to_string(),
            value: Value::Scalar(v),
            reservations: Vec::new(),
        }
    }

    /// The role this resource is reserved to (`*` when unreserved).
    pub fn role(&self) -> &str {
        self.reservations
            .last()
            .map_or(UNRESERVED, |r| r.role.as_str())
    }

    /// True when reserved (statically or dynamically).
    pub fn is_reserved(&self) -> bool {
        !self.reservations.is_empty()
    }

    /// True when the reservation stack has more than one entry (RESERVATION_REFINEMENT).
    pub fn is_refined(&self) -> bool {
        self.reservations.len() > 1
    }

    /// Mesos' `allocatableTo(role)`: unreserved, or reserved to `role` or one of its ancestors.
    pub fn allocatable_to(&self, role: &str) -> bool {
        let r = self.role();
        r == UNRESERVED || r == role || role.starts_with(&format!("{r}/"))
    }

    /// Same name, type and reservations: the two may be combined into one entry.
    fn same_key(&self, o: &Resource) -> bool {
        self.name == o.name
            && self.value.kind() == o.value.kind()
            && self.reservations == o.reservations
    }
}

/// A normalised collection: at most one entry per (name, type, reservations), no empty entries.
#[derive(Clone, Debug, Default)]
pub struct Resources(Vec<Resource>);

/// Equality ignores entry order (both are normalised, so mutual containment is equality).
impl PartialEq for Resources {
    fn eq(&self, other: &Resources) -> bool {
        self.0.len() == other.0.len() && self.contains(other) && other.contains(self)
    }
}
impl Eq for Resources {}

impl Resources {
    /// Empty.
    pub fn new() -> Resources {
        Resources(Vec::new())
    }

    /// Normalises arbitrary resources (combines duplicates, drops empties).
    pub fn from_vec(v: Vec<Resource>) -> Resources {
        let mut out = Resources::new();
        for r in v {
            out.add_resource(&r);
        }
        out
    }

    /// The entries.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.0.iter()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one resource.
    pub fn add_resource(&mut self, r: &Resource) {
        if r.value.is_empty() {
            return;
        }
        match self.0.iter_mut().find(|e| e.same_key(r)) {
            Some(e) => e.value = e.value.add(&r.value),
            None => self.0.push(r.clone()),
        }
    }

    /// Subtracts one resource (saturating: removes the entry when it runs out).
    pub fn subtract_resource(&mut self, r: &Resource) {
        if let Some(i) = self.0.iter().position(|e| e.same_key(r)) {
            let v = self.0[i].value.subtract(&r.value);
            if v.is_empty() {
                self.0.remove(i);
            } else {
                self.0[i].value = v;
            }
        }
    }

    /// `self + other`.
    pub fn add(&mut self, other: &Resources) {
        for r in &other.0 {
            self.add_resource(r);
        }
    }

    /// `self - other`.
    pub fn subtract(&mut self, other: &Resources) {
        for r in &other.0 {
            self.subtract_resource(r);
        }
    }

    /// Superset test: `self` contains every entry of `other` (matching reservations).
    pub fn contains(&self, other: &Resources) -> bool {
        other.0.iter().all(|o| {
            self.0
                .iter()
                .any(|e| e.same_key(o) && e.value.contains(&o.value))
        })
    }

    /// Entries matching a predicate.
    pub fn filter(&self, pred: impl Fn(&Resource) -> bool) -> Resources {
        Resources(self.0.iter().filter(|r| pred(r)).cloned().collect())
    }

    /// Unreserved entries.
    pub fn unreserved(&self) -> Resources {
        self.filter(|r| !r.is_reserved())
    }

    /// Reserved entries; with `Some(role)` only those reserved to exactly that role.
    pub fn reserved(&self, role: Option<&str>) -> Resources {
        self.filter(|r| r.is_reserved() && role.is_none_or(|x| r.role() == x))
    }

    /// Entries allocatable to `role` (unreserved or reserved to it or an ancestor).
    pub fn allocatable_to(&self, role: &str) -> Resources {
        self.filter(|r| r.allocatable_to(role))
    }

    /// Sum of the scalar named `name` across reservations.
    pub fn scalar(&self, name: &str) -> Scalar {
        self.0
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| match r.value {
                Value::Scalar(s) => Some(s),
                _ => None,
            })
            .fold(Scalar::ZERO, |a, b| a + b)
    }

    /// Names of scalar resources present.
    pub fn scalar_names(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .filter(|r| matches!(r.value, Value::Scalar(_)))
            .map(|r| r.name.as_str())
            .collect()
    }
}

impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Self {
        Resources::from_vec(iter.into_iter().collect())
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if self.is_reserved() {
            write!(f, "({})", self.role())?;
        }
        match &self.value {
            Value::Scalar(s) => write!(f, ":{s}"),
            Value::Ranges(r) => write!(f, ":{r}"),
            Value::Set(s) => {
                let items: Vec<&str> = s.iter().map(String::as_str).collect();
                write!(f, ":{{{}}}", items.join(", "))
            }
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", parts.join("; "))
    }
}

/// Interns scalar resource names to dense indices so the allocator's hot path works on
/// `Vec<Scalar>` instead of name lookups.
#[derive(Clone, Debug, Default)]
pub struct NameIndex {
    names: Vec<String>,
}

impl NameIndex {
    /// Index of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> usize {
        match self.get(name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }

    /// Index of `name`, if interned.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Number of interned names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Interned names in index order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Scalar amounts of `r` as a dense vector (names not interned are ignored).
    pub fn amounts(&self, r: &Resources) -> Vec<Scalar> {
        let mut v = vec![Scalar::ZERO; self.names.len()];
        for res in r.iter() {
            if let (Value::Scalar(s), Some(i)) = (&res.value, self.get(&res.name)) {
                v[i] += *s;
            }
        }
        v
    }
}

#[cfg(test)]
mod tests;
