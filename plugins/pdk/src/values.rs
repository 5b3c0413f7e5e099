//! Typed reads of a row's cells ([`FromCell`], used by [`crate::Row::get`]) and the
//! exact [`Decimal`] money is read and summed as.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use ferry_wire::decimal;

use crate::Cell;

/// Digits an `i128` always holds: the widest decimal the kit reads or writes.
pub const MAX_PRECISION: u8 = 38;

/// A Rust type a source cell reads as: `row.get::<Decimal>("amount")`,
/// `row.get::<Option<&str>>("category")`. A NULL reads only as `Option<_>` or [`Cell`].
pub trait FromCell<'a>: Sized {
    /// The value, or `None` when the cell holds something else.
    fn from_cell(cell: Cell<'a>) -> Option<Self>;
    /// What the type reads, for messages: `"text"`, `"an integer"`.
    fn expected() -> String;
}

impl<'a> FromCell<'a> for Cell<'a> {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        Some(cell)
    }
    fn expected() -> String {
        "any value".into()
    }
}

impl<'a> FromCell<'a> for &'a str {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        cell.text()
    }
    fn expected() -> String {
        "text".into()
    }
}

impl<'a> FromCell<'a> for String {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        cell.text().map(str::to_string)
    }
    fn expected() -> String {
        "text".into()
    }
}

impl<'a> FromCell<'a> for &'a [u8] {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        match cell {
            Cell::Blob(b) => Some(b),
            _ => None,
        }
    }
    fn expected() -> String {
        "a blob".into()
    }
}

impl<'a> FromCell<'a> for i64 {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        cell.integer()
    }
    fn expected() -> String {
        "an integer".into()
    }
}

impl<'a> FromCell<'a> for i32 {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        cell.integer().and_then(|n| i32::try_from(n).ok())
    }
    fn expected() -> String {
        "an integer of 32 bits".into()
    }
}

impl<'a> FromCell<'a> for bool {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        match cell {
            Cell::Integer(0) => Some(false),
            Cell::Integer(1) => Some(true),
            _ => None,
        }
    }
    fn expected() -> String {
        "the integer 0 or 1".into()
    }
}

impl<'a> FromCell<'a> for f64 {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        match cell {
            Cell::Real(r) => Some(r),
            Cell::Integer(n) => Some(n as f64),
            _ => None,
        }
    }
    fn expected() -> String {
        "a real or an integer".into()
    }
}

impl<'a> FromCell<'a> for Decimal {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        match cell {
            Cell::Text(t) => t.parse().ok(),
            Cell::Integer(n) => Some(Decimal::from(n)),
            _ => None,
        }
    }
    fn expected() -> String {
        format!("a decimal (text like \"-12.30\" or an integer) of at most {MAX_PRECISION} digits")
    }
}

impl<'a, T: FromCell<'a>> FromCell<'a> for Option<T> {
    fn from_cell(cell: Cell<'a>) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            cell => T::from_cell(cell).map(Some),
        }
    }
    fn expected() -> String {
        format!("{} or NULL", T::expected())
    }
}

/// An exact decimal: an unscaled integer and how many of its digits follow the point
/// (`12.30` is 1230 at scale 2). Sums keep the wider scale; a record field takes it at
/// the field's scale, and refuses one that would lose digits. Never a float.
#[derive(Debug, Clone, Copy, Default)]
pub struct Decimal {
    unscaled: i128,
    scale: u8,
}

/// Why a text is not a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDecimalError(String);

impl fmt::Display for ParseDecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a decimal: write digits with an optional sign and point (\"-12.30\"), at most {MAX_PRECISION} digits",
            self.0
        )
    }
}

impl std::error::Error for ParseDecimalError {}

impl Decimal {
    pub const ZERO: Decimal = Decimal { unscaled: 0, scale: 0 };

    /// `unscaled / 10^scale`; `None` when `scale` is over [`MAX_PRECISION`] or the
    /// value has more digits than that.
    pub fn new(unscaled: i128, scale: u8) -> Option<Self> {
        (scale <= MAX_PRECISION && decimal::fits(unscaled, MAX_PRECISION.into())).then_some(Decimal { unscaled, scale })
    }

    pub fn unscaled(self) -> i128 {
        self.unscaled
    }

    pub fn scale(self) -> u8 {
        self.scale
    }

    /// The unscaled value at `scale` (`1.5` at 2 is 150); `None` when that would drop
    /// non-zero digits or overflow.
    pub fn at_scale(self, scale: u8) -> Option<i128> {
        match scale.cmp(&self.scale) {
            Ordering::Equal => Some(self.unscaled),
            Ordering::Greater => self.unscaled.checked_mul(10i128.checked_pow((scale - self.scale).into())?),
            Ordering::Less => {
                let div = 10i128.checked_pow((self.scale - scale).into())?;
                (self.unscaled % div == 0).then_some(self.unscaled / div)
            }
        }
    }

    /// Rounded half away from zero to `scale` digits after the point.
    pub fn round(self, scale: u8) -> Decimal {
        if scale >= self.scale {
            return self;
        }
        let div = 10i128.pow((self.scale - scale).into());
        let (q, r) = (self.unscaled / div, self.unscaled % div);
        let q = if r.abs() * 2 >= div { q + self.unscaled.signum() } else { q };
        Decimal { unscaled: q, scale }
    }

    /// The sum, or `None` when it overflows 38 digits.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        Decimal::new(self.at_scale(scale)?.checked_add(other.at_scale(scale)?)?, scale)
    }
}

impl From<i64> for Decimal {
    fn from(n: i64) -> Self {
        Decimal { unscaled: n.into(), scale: 0 }
    }
}

impl core::str::FromStr for Decimal {
    type Err = ParseDecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let scale = s.find('.').map_or(0, |p| s.len() - p - 1);
        let err = || ParseDecimalError(s.chars().take(40).collect());
        let scale = u8::try_from(scale).ok().filter(|&s| s <= MAX_PRECISION).ok_or_else(err)?;
        let unscaled = decimal::parse(s.as_bytes(), MAX_PRECISION.into(), scale.into()).ok_or_else(err)?;
        Ok(Decimal { unscaled, scale })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&decimal::to_text(self.unscaled, self.scale.into()))
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    /// By value: `1.50 == 1.5`.
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        // At most 38 + 38 digits would overflow; compare in wider steps when it does.
        match (self.at_scale(scale), other.at_scale(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => {
                (self.unscaled as f64 / 10f64.powi(self.scale.into())).total_cmp(&(other.unscaled as f64 / 10f64.powi(other.scale.into())))
            }
        }
    }
}

impl Add for Decimal {
    type Output = Decimal;

    /// Panics when the sum overflows 38 digits; see [`Decimal::checked_add`].
    fn add(self, other: Decimal) -> Decimal {
        self.checked_add(other).unwrap_or_else(|| panic!("decimal overflow: {self} + {other} has more than {MAX_PRECISION} digits"))
    }
}

impl AddAssign for Decimal {
    fn add_assign(&mut self, other: Decimal) {
        *self = *self + other;
    }
}

impl Neg for Decimal {
    type Output = Decimal;

    fn neg(self) -> Decimal {
        Decimal { unscaled: -self.unscaled, scale: self.scale }
    }
}

impl Sub for Decimal {
    type Output = Decimal;

    fn sub(self, other: Decimal) -> Decimal {
        self + -other
    }
}

impl SubAssign for Decimal {
    fn sub_assign(&mut self, other: Decimal) {
        *self = *self - other;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn decimals_parse_sum_and_rescale_exactly() {
        assert_eq!(d("12.30").to_string(), "12.30");
        assert_eq!(d("12.3") + d("0.05"), d("12.35"));
        assert_eq!(d("1.50"), d("1.5"));
        assert_eq!(d("-0.5").at_scale(2), Some(-50));
        assert_eq!(d("0.125").at_scale(2), None);
        assert_eq!(d("0.125").round(2), d("0.13"));
        assert_eq!(d("-0.125").round(2), d("-0.13"));
        assert_eq!(Decimal::from(7) - d("0.5"), d("6.5"));
        assert!("1e3".parse::<Decimal>().unwrap_err().to_string().contains("\"1e3\" is not a decimal"));
    }

    #[test]
    fn cells_read_as_their_types() {
        assert_eq!(<Option<&str>>::from_cell(Cell::Null), Some(None));
        assert_eq!(<&str>::from_cell(Cell::Null), None);
        assert_eq!(bool::from_cell(Cell::Integer(1)), Some(true));
        assert_eq!(bool::from_cell(Cell::Integer(2)), None);
        assert_eq!(i32::from_cell(Cell::Integer(1 << 40)), None);
        assert_eq!(Decimal::from_cell(Cell::Text("-1.25")), Some(d("-1.25")));
        assert_eq!(Decimal::from_cell(Cell::Real(1.25)), None);
        assert_eq!(<Option<i64>>::expected(), "an integer or NULL");
    }
}
