//! Running figures of one column: nulls, min, max and a HyperLogLog distinct estimate
//! (4,096 registers, about 1.6% standard error, 4 KiB per column whatever the rows).

use std::hash::{DefaultHasher, Hasher};

use super::cell::Cell;

const BITS: u32 = 12;
const REGISTERS: usize = 1 << BITS;

pub struct ColumnStats {
    pub nulls: u64,
    pub min: Option<Cell>,
    pub max: Option<Cell>,
    registers: Vec<u8>,
}

impl Default for ColumnStats {
    fn default() -> Self {
        ColumnStats { nulls: 0, min: None, max: None, registers: vec![0; REGISTERS] }
    }
}

impl ColumnStats {
    pub fn add(&mut self, c: Cell) {
        if c == Cell::Null {
            self.nulls += 1;
            return;
        }
        // DefaultHasher::new() has fixed keys: the same values give the same estimate.
        let mut h = DefaultHasher::new();
        h.write(&c.key());
        let hash = h.finish();
        let index = (hash >> (64 - BITS)) as usize;
        let rank = ((hash << BITS) | (1 << (BITS - 1))).leading_zeros() as u8 + 1;
        self.registers[index] = self.registers[index].max(rank);
        if self.min.as_ref().is_none_or(|m| c.compare(m).is_some_and(|o| o.is_lt())) {
            self.min = Some(c.clone());
        }
        if self.max.as_ref().is_none_or(|m| c.compare(m).is_some_and(|o| o.is_gt())) {
            self.max = Some(c);
        }
    }

    /// The HyperLogLog estimate, with the small-range (linear counting) correction.
    pub fn distinct(&self) -> u64 {
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let estimate = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        if estimate <= 2.5 * m && zeros > 0 { (m * (m / zeros as f64).ln()).round() as u64 } else { estimate.round() as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_estimate_is_close() {
        for n in [0u64, 1, 100, 10_000, 200_000] {
            let mut s = ColumnStats::default();
            for i in 0..n {
                s.add(Cell::Int(i.into()));
                s.add(Cell::Int(i.into()));
            }
            let e = s.distinct() as f64;
            assert!((e - n as f64).abs() <= (n as f64 * 0.05).max(1.0), "{n}: {e}");
        }
    }
}
