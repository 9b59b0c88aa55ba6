//! Deterministic mutation fuzzing helpers (xorshift64*, no crates): seeds
//! are real messages, mutations truncate, flip bits, overwrite length and
//! offset fields with extreme values, splice garbage and duplicate.

/// xorshift64* PRNG.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One mutated copy of `seed`.
pub fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..=rng.below(3) {
        if m.is_empty() {
            m.push(rng.next() as u8);
        }
        match rng.below(7) {
            0 => m.truncate(rng.below(m.len() + 1)),
            1 => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            2 => {
                // an extreme value over a 2- or 4-byte field, often in the body
                let i = rng.below(m.len());
                let v: [u8; 4] = match rng.below(4) {
                    0 => [0xff; 4],
                    1 => [0; 4],
                    2 => (rng.next() as u32).to_le_bytes(),
                    _ => [0x40, 0, 0, 0],
                };
                for (k, b) in v
                    .iter()
                    .enumerate()
                    .take(if rng.below(2) == 0 { 2 } else { 4 })
                {
                    if let Some(x) = m.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
            3 => {
                let extra = rng.below(64);
                m.extend((0..extra).map(|_| rng.next() as u8));
            }
            4 => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            5 => {
                let i = rng.below(m.len());
                let n = rng.below(m.len() - i + 1);
                let chunk = m[i..i + n].to_vec();
                m.extend(chunk);
            }
            _ => m = (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        }
    }
    m
}
