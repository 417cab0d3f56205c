//! Inclusive integer ranges (ports), kept sorted, disjoint and coalesced.

use std::fmt;

/// A set of inclusive `[begin, end]` ranges in canonical form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// Builds canonical ranges from arbitrary (possibly overlapping) pairs; pairs with begin > end
    /// are rejected by the parsers before reaching here and ignored if they do.
    pub fn new(pairs: impl IntoIterator<Item = (u64, u64)>) -> Ranges {
        let mut v: Vec<(u64, u64)> = pairs.into_iter().filter(|(b, e)| b <= e).collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (b, e) in v {
            match out.last_mut() {
                // Adjacent ranges coalesce too: [1-2] + [3-4] = [1-4].
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => out.push((b, e)),
            }
        }
        Ranges(out)
    }

    /// The canonical pairs.
    pub fn pairs(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// True when no value is covered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Union.
    pub fn merge(&self, other: &Ranges) -> Ranges {
        Ranges::new(self.0.iter().chain(other.0.iter()).copied())
    }

    /// Set difference.
    pub fn subtract(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::new();
        for &(mut b, e) in &self.0 {
            let mut alive = true;
            for &(ob, oe) in &other.0 {
                if !alive || oe < b || ob > e {
                    continue;
                }
                if ob > b {
                    out.push((b, ob - 1));
                }
                if oe >= e {
                    alive = false;
                } else {
                    b = oe + 1;
                }
            }
            if alive {
                out.push((b, e));
            }
        }
        Ranges::new(out)
    }

    /// Superset test: every value of `other` is covered.
    pub fn contains(&self, other: &Ranges) -> bool {
        other
            .0
            .iter()
            .all(|&(b, e)| self.0.iter().any(|&(sb, se)| sb <= b && e <= se))
    }

    /// Number of covered values.
    pub fn count(&self) -> u64 {
        self.0
            .iter()
            .map(|(b, e)| (e - b).saturating_add(1))
            .fold(0u64, u64::saturating_add)
    }
}

impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(b, e)| format!("{b}-{e}")).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_subtract_contains() {
        let a = Ranges::new([(31000, 31005), (31003, 31010), (31011, 31012)]);
        assert_eq!(a.pairs(), &[(31000, 31012)]);
        let b = a.subtract(&Ranges::new([(31002, 31003), (31012, 31020)]));
        assert_eq!(b.pairs(), &[(31000, 31001), (31004, 31011)]);
        assert!(a.contains(&b));
        assert!(!b.contains(&a));
        assert_eq!(b.count(), 10);
        assert_eq!(
            b.merge(&Ranges::new([(31002, 31003)])).pairs(),
            &[(31000, 31011)]
        );
        assert!(a.subtract(&a).is_empty());
        assert_eq!(b.to_string(), "[31000-31001, 31004-31011]");
    }
}
