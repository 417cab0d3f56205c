//! Per-role quota: guarantees (held back as headroom until met) and limits (never exceeded).

use crate::resources::{NameIndex, Scalar};
use std::collections::BTreeMap;

/// One role's quota, in scalar amounts by resource name. Names absent from `limit` are unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// Guaranteed amounts.
    pub guarantee: BTreeMap<String, Scalar>,
    /// Upper bounds on what the role may consume.
    pub limit: BTreeMap<String, Scalar>,
}

/// Quotas by role.
pub type QuotaTable = BTreeMap<String, Quota>;

/// A quota converted to dense vectors for the allocation hot path.
#[derive(Clone, Debug)]
pub struct DenseQuota {
    /// Guarantee per interned name (0 when none).
    pub guarantee: Vec<Scalar>,
    /// Limit per interned name (`None` = unlimited).
    pub limit: Vec<Option<Scalar>>,
}

impl Quota {
    /// Dense form over `idx` (names must already be interned to count).
    pub fn dense(&self, idx: &NameIndex) -> DenseQuota {
        let mut guarantee = vec![Scalar::ZERO; idx.len()];
        let mut limit = vec![None; idx.len()];
        for (n, v) in &self.guarantee {
            if let Some(i) = idx.get(n) {
                guarantee[i] = *v;
            }
        }
        for (n, v) in &self.limit {
            if let Some(i) = idx.get(n) {
                limit[i] = Some(*v);
            }
        }
        DenseQuota { guarantee, limit }
    }
}

impl DenseQuota {
    /// Guarantee not yet covered by `consumed` (allocated plus reserved), per name.
    pub fn unmet(&self, consumed: &[Scalar]) -> Vec<Scalar> {
        self.guarantee
            .iter()
            .zip(consumed.iter().chain(std::iter::repeat(&Scalar::ZERO)))
            .map(|(g, c)| (*g - *c).max(Scalar::ZERO))
            .collect()
    }

    /// Room left under the limit per name (`None` = unlimited).
    pub fn limit_room(&self, consumed: &[Scalar]) -> Vec<Option<Scalar>> {
        self.limit
            .iter()
            .zip(consumed.iter().chain(std::iter::repeat(&Scalar::ZERO)))
            .map(|(l, c)| l.map(|l| (l - *c).max(Scalar::ZERO)))
            .collect()
    }

    /// True when any limited name has no room left.
    pub fn at_limit(&self, consumed: &[Scalar]) -> bool {
        self.limit_room(consumed).contains(&Some(Scalar::ZERO))
    }
}

/// Unreserved amounts that may go to anyone without eating into unmet guarantees:
/// `available - required`, floored at 0, per name.
pub fn headroom_surplus(available: &[Scalar], required: &[Scalar]) -> Vec<Scalar> {
    available
        .iter()
        .zip(required.iter().chain(std::iter::repeat(&Scalar::ZERO)))
        .map(|(a, r)| (*a - *r).max(Scalar::ZERO))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(v: i64) -> Scalar {
        Scalar::from_units(v)
    }

    #[test]
    fn unmet_limit_and_headroom() {
        let mut idx = NameIndex::default();
        idx.intern("cpus");
        idx.intern("mem");
        let q = Quota {
            guarantee: [("cpus".to_string(), u(4))].into(),
            limit: [("cpus".to_string(), u(6))].into(),
        }
        .dense(&idx);
        assert_eq!(q.unmet(&[u(1), u(100)]), vec![u(3), u(0)]);
        assert_eq!(q.unmet(&[u(5), u(0)]), vec![u(0), u(0)]);
        assert_eq!(q.limit_room(&[u(5), u(0)]), vec![Some(u(1)), None]);
        assert!(q.at_limit(&[u(6), u(0)]));
        // 10 cpus free cluster-wide, 3 still owed to the quota role: only 7 may go elsewhere.
        assert_eq!(
            headroom_surplus(&[u(10), u(50)], &[u(3), u(0)]),
            vec![u(7), u(50)]
        );
        assert_eq!(headroom_surplus(&[u(2)], &[u(3)]), vec![u(0)]);
    }
}
