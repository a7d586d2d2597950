//! Deterministic pseudo-random numbers: splitmix64 to derive seeds, xoshiro256** to draw, and
//! Zipf tables. Integer arithmetic only (no `f64`), so a seed gives the same corpus on every
//! platform and with every compiler.

/// One step of splitmix64 (Steele, Lea, Flood), the usual way to spread a seed over 256 bits.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a few numbers into one. Streams are named by such tuples (seed, purpose, window, ...),
/// so each window draws from its own stream and windows can be made in any order, on any thread.
pub(crate) fn mix(parts: &[u64]) -> u64 {
    let mut h = 0x6A09_E667_F3BC_C908_u64;
    for &p in parts {
        let mut state = h ^ p;
        h = splitmix64(&mut state);
    }
    h
}

/// xoshiro256** (Blackman and Vigna).
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The stream named by `parts` (see [`mix`]).
    pub(crate) fn new(parts: &[u64]) -> Rng {
        let mut state = mix(parts);
        let s = [
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
        ];
        Rng { s }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`) by Lemire's multiply-shift. Its bias, below n / 2^64, is far
    /// under anything a corpus could show.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `p` / 1000.
    pub(crate) fn per_mille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, drawn in proportion to them.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        weights.len() - 1
    }

    /// A heavy-tailed count in `1..=2^max_log2`: uniform in log scale, so small counts are common
    /// and large ones rare, as packet counts of flows are.
    pub(crate) fn log_uniform(&mut self, max_log2: u32) -> u64 {
        let e = self.below(u64::from(max_log2) + 1) as u32;
        1 + self.below(1u64 << e)
    }

    /// `n` lowercase hex digits (`n <= 16`).
    pub(crate) fn hex(&mut self, n: usize, out: &mut String) {
        let v = self.next_u64();
        for i in (0..n).rev() {
            let d = ((v >> (4 * i)) & 0xF) as u8;
            out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
        }
    }
}

/// Ranks `0..n` drawn with weight proportional to 1/(rank+1)^s: a few ranks get most draws.
pub(crate) struct Zipf {
    cumulative: Vec<u64>,
}

/// Weights are fixed-point with this many fractional bits.
const WEIGHT_ONE: u128 = 1 << 40;

impl Zipf {
    /// `s` is 1, or 1.5 when `steep` (for talkers, where a handful carry most of the traffic).
    pub(crate) fn new(n: usize, steep: bool) -> Zipf {
        let mut total = 0u64;
        let cumulative = (1..=n as u128)
            .map(|k| {
                let w = if steep {
                    // 1 / k^1.5, as 2^40 * 2^20 / sqrt(k^3 * 2^40) in integers.
                    (WEIGHT_ONE << 20) / (k * k * k * WEIGHT_ONE).isqrt().max(1)
                } else {
                    WEIGHT_ONE / k
                };
                total += w.max(1) as u64;
                total
            })
            .collect();
        Zipf { cumulative }
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let r = rng.below(total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(&[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(&[1, 2]).next_u64(), Rng::new(&[1, 3]).next_u64());
        assert_ne!(mix(&[1, 2]), mix(&[2, 1]));
    }

    #[test]
    fn zipf_favours_low_ranks_and_stays_in_range() {
        let z = Zipf::new(100, true);
        let mut rng = Rng::new(&[7]);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        // s = 1.5 over 100 ranks: rank 0 takes about 41%, rank 1 about 15%.
        assert!((38_000..44_000).contains(&counts[0]), "{}", counts[0]);
        assert!(counts[0] > 2 * counts[1] && counts[1] > counts[10]);
        assert!(counts[99] > 0);
    }

    #[test]
    fn below_and_weighted_stay_in_range() {
        let mut rng = Rng::new(&[9]);
        for n in [1u64, 2, 3, 1000] {
            assert!((0..200).all(|_| rng.below(n) < n));
        }
        let mut seen = [0u32; 3];
        for _ in 0..3000 {
            seen[rng.weighted(&[1, 0, 2])] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[2] > seen[0]);
    }
}
