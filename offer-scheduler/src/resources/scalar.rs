//! Fixed-point scalar values (thousandths, as Mesos rounds scalars to 3 decimal digits).

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// A non-float scalar: the value times 1000, so `0.1 + 0.2 == 0.3` exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scalar(pub i64);

impl Scalar {
    /// Zero.
    pub const ZERO: Scalar = Scalar(0);

    /// Rounds a float to the nearest thousandth (Mesos' convention); `None` for NaN/inf/overflow.
    pub fn from_f64(v: f64) -> Option<Scalar> {
        let milli = (v * 1000.0).round();
        if !milli.is_finite() || milli.abs() > (i64::MAX / 2) as f64 {
            return None;
        }
        Some(Scalar(milli as i64))
    }

    /// Whole units.
    pub fn from_units(units: i64) -> Scalar {
        Scalar(units.saturating_mul(1000))
    }

    /// The value as a float (for JSON and share computation only).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// True when strictly positive.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, o: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(o.0))
    }
}
impl Sub for Scalar {
    type Output = Scalar;
    fn sub(self, o: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(o.0))
    }
}
impl AddAssign for Scalar {
    fn add_assign(&mut self, o: Scalar) {
        *self = *self + o;
    }
}
impl SubAssign for Scalar {
    fn sub_assign(&mut self, o: Scalar) {
        *self = *self - o;
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, frac) = (abs / 1000, abs % 1000);
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let s = format!("{frac:03}");
            write!(f, "{sign}{whole}.{}", s.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_is_exact() {
        let a = Scalar::from_f64(0.1).unwrap_or_default();
        let b = Scalar::from_f64(0.2).unwrap_or_default();
        assert_eq!(a + b, Scalar::from_f64(0.3).unwrap_or_default());
        assert_eq!((a + b).to_string(), "0.3");
        assert_eq!(Scalar::from_f64(1.0004), Some(Scalar(1000)));
        assert_eq!(Scalar::from_f64(1.0005), Some(Scalar(1001)));
        assert_eq!(Scalar::from_f64(f64::NAN), None);
        assert_eq!(Scalar::from_units(2).to_string(), "2");
    }
}
