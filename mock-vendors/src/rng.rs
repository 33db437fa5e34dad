//! A small seeded random source, so a catalog and its fluctuations repeat from a seed.

/// SplitMix64: fast, seedable, good enough for mock data (not for anything secret).
#[derive(Debug, Clone)]
pub(crate) struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator whose sequence is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high` (`low` when the range is empty).
    pub(crate) fn between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = u64::try_from(high - low)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        low + i64::try_from(self.next_u64() % span).unwrap_or(0)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // 53 random bits fill an f64's mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_ranges_hold() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        for _ in 0..1_000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let n = a.between(-5, 5);
            assert_eq!(n, b.between(-5, 5));
            assert!((-5..=5).contains(&n));
            let u = a.unit();
            assert_eq!(u.to_bits(), b.unit().to_bits());
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(a.between(3, 3), 3);
        assert_eq!(a.between(4, 1), 4);
    }
}
