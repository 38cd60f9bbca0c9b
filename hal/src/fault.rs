//! Fault injection for the sim's Wiegand playback, in the manner of smoltcp's
//! `FaultInjector`: per-mille rates of dropped bits, flipped bits (pulse on the wrong line)
//! and noise glitches, from a seeded generator so a failing run can be replayed.

use serde::{Deserialize, Serialize};

use crate::wiegand::DataLine;

/// Per-mille fault rates; all zero (the default) injects nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// A bit's pulse is lost.
    #[serde(default)]
    pub drop_per_mille: u16,
    /// A bit's pulse appears on the other data line.
    #[serde(default)]
    pub flip_per_mille: u16,
    /// A 1 µs glitch follows a bit (the capture must reject it).
    #[serde(default)]
    pub noise_per_mille: u16,
    /// Generator seed; 0 picks a fixed default.
    #[serde(default)]
    pub seed: u64,
}

/// Applies a [`FaultConfig`] to edge lists `(line, active, t_ns)`.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    config: FaultConfig,
    state: u64,
}

impl FaultInjector {
    pub fn new(config: FaultConfig) -> FaultInjector {
        let state = if config.seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            config.seed
        };
        FaultInjector { config, state }
    }

    /// xorshift64*: enough randomness for fault timing, no dependency.
    fn roll(&mut self, per_mille: u16) -> bool {
        if per_mille == 0 {
            return false;
        }
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) % 1000;
        r < u64::from(per_mille)
    }

    /// Rewrites the edges of whole pulses (pairs of active then inactive edges).
    pub fn apply(&mut self, edges: &mut Vec<(DataLine, bool, u64)>) {
        let c = &self.config;
        if c.drop_per_mille == 0 && c.flip_per_mille == 0 && c.noise_per_mille == 0 {
            return;
        }
        let (drop, flip, noise) = (c.drop_per_mille, c.flip_per_mille, c.noise_per_mille);
        let mut out = Vec::with_capacity(edges.len() + 8);
        for pulse in edges.chunks(2) {
            let [(line, _, start), (_, _, end)] = pulse else {
                out.extend_from_slice(pulse);
                continue;
            };
            if self.roll(drop) {
                continue;
            }
            let line = if self.roll(flip) {
                match line {
                    DataLine::D0 => DataLine::D1,
                    DataLine::D1 => DataLine::D0,
                }
            } else {
                *line
            };
            out.push((line, true, *start));
            out.push((line, false, *end));
            if self.roll(noise) {
                let t = end + 500_000;
                out.push((line, true, t));
                out.push((line, false, t + 1_000));
            }
        }
        out.sort_by_key(|e| e.2);
        *edges = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wiegand::capture::edges_for_bits;
    use crate::wiegand::WiegandBits;

    #[test]
    fn rates_at_extremes() {
        let bits = WiegandBits::from_bit_str("1010").unwrap();
        let clean = edges_for_bits(&bits, 0, 50_000, 2_000_000);

        let mut e = clean.clone();
        FaultInjector::new(FaultConfig::default()).apply(&mut e);
        assert_eq!(e, clean);

        let mut e = clean.clone();
        FaultInjector::new(FaultConfig {
            drop_per_mille: 1000,
            ..Default::default()
        })
        .apply(&mut e);
        assert!(e.is_empty());

        let mut e = clean.clone();
        FaultInjector::new(FaultConfig {
            flip_per_mille: 1000,
            ..Default::default()
        })
        .apply(&mut e);
        assert_eq!(e, edges_for_bits(&bits.inverted(), 0, 50_000, 2_000_000));

        let mut e = clean.clone();
        FaultInjector::new(FaultConfig {
            noise_per_mille: 1000,
            ..Default::default()
        })
        .apply(&mut e);
        assert_eq!(e.len(), 16);
    }
}
