//! Wiegand bit capture: D0/D1 pulses in, frames out. A pure state machine: edges carry
//! their own timestamps and the caller says what time it is (`poll(now)`), so tests replay
//! recorded edge timings and the Linux and sim backends share this code.
//!
//! Reader timing (the de-facto standard): a bit is a low pulse of 20–100 µs on D0 (a 0) or
//! D1 (a 1), pulses 0.2–20 ms apart (1–2 ms typical), and a frame ends with silence much
//! longer than the bit interval. A pulse shorter than `min_pulse` or longer than
//! `max_pulse`, a pulse while the other line is active, or an end without a start is noise:
//! it is counted and dropped, never turned into a bit.
//!
//! # End of frame
//!
//! A reader keeps its own bit period steady within a frame, so the frame's own edges say
//! how long a silence ends it: `end_bit_periods` (default 4) times the longest interval
//! between the starts of two consecutive pulses seen so far, at least `min_gap` (2 ms)
//! and at most `frame_gap` (the board's `frame_gap_ms`, 25 ms). Until a frame has two
//! pulses, and with `end_bit_periods = 0`, the whole `frame_gap` is waited, as before.
//! A 2 ms reader's frame therefore ends 8 ms after its last edge instead of 25 ms; keypad
//! bursts (a key every ~100 ms or more) and a frame interrupted for longer than a few of
//! its bit periods still become separate frames. The caller may also say that edges are
//! still on their way to the capture ([`WiegandCapture::poll_unless_pending`]): then the
//! frame waits for them, up to `frame_gap`.

use crate::timestamp::Timestamp;

use super::{WiegandBits, WiegandFrame};

/// Which data line an edge is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLine {
    D0,
    D1,
}

impl DataLine {
    fn index(self) -> usize {
        match self {
            DataLine::D0 => 0,
            DataLine::D1 => 1,
        }
    }
}

/// Timing limits of the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Shorter pulses are noise. Default 5 µs.
    pub min_pulse_ns: u64,
    /// Longer pulses are noise (a stuck or shorted line). Default 2 ms.
    pub max_pulse_ns: u64,
    /// The longest silence inside a frame: it ends every frame, and it is the whole gap
    /// until a frame has two pulses or when `end_bit_periods` is 0. Default 25 ms.
    pub frame_gap_ns: u64,
    /// Silence of this many of the frame's own bit periods ends it (0: always
    /// `frame_gap_ns`). Default 4.
    pub end_bit_periods: u32,
    /// The shortest silence that ends a frame. Default 2 ms.
    pub min_gap_ns: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            min_pulse_ns: 5_000,
            max_pulse_ns: 2_000_000,
            frame_gap_ns: 25_000_000,
            end_bit_periods: 4,
            min_gap_ns: 2_000_000,
        }
    }
}

impl CaptureConfig {
    pub fn with_frame_gap_ms(ms: u32) -> CaptureConfig {
        CaptureConfig {
            frame_gap_ns: u64::from(ms) * 1_000_000,
            ..CaptureConfig::default()
        }
    }

    /// The same with another `end_bit_periods` (0: the fixed `frame_gap`).
    pub fn with_end_bit_periods(self, periods: u32) -> CaptureConfig {
        CaptureConfig {
            end_bit_periods: periods,
            ..self
        }
    }

    /// The silence that ends a frame whose longest bit interval so far is `interval_ns`
    /// (0: not known yet).
    pub fn gap_ns(&self, interval_ns: u64) -> u64 {
        if self.end_bit_periods == 0 || interval_ns == 0 {
            return self.frame_gap_ns;
        }
        interval_ns
            .saturating_mul(u64::from(self.end_bit_periods))
            .clamp(self.min_gap_ns.min(self.frame_gap_ns), self.frame_gap_ns)
    }
}

/// The capture state of one reader.
///
/// Pulses are kept with their start and end times and judged at the end of the frame, by
/// time and not by arrival order: the two lines may be read by different threads, so one
/// line's edges can arrive a little after the other's.
#[derive(Debug, Clone)]
pub struct WiegandCapture {
    config: CaptureConfig,
    open: [Option<Timestamp>; 2],
    /// Completed pulses of plausible width, sorted by start: (start ns, end ns, is D1,
    /// start).
    pulses: Vec<(u64, u64, bool, Timestamp)>,
    /// The longest interval between the starts of two consecutive pulses (0: fewer than
    /// two pulses).
    longest_interval_ns: u64,
    last: Option<Timestamp>,
    noise: u32,
}

impl WiegandCapture {
    pub fn new(config: CaptureConfig) -> WiegandCapture {
        WiegandCapture {
            config,
            open: [None, None],
            pulses: Vec::new(),
            longest_interval_ns: 0,
            last: None,
            noise: 0,
        }
    }

    pub fn config(&self) -> CaptureConfig {
        self.config
    }

    /// One edge: `active` true when the line went to its active (pulse) level.
    pub fn on_edge(&mut self, line: DataLine, active: bool, at: Timestamp) {
        let me = line.index();
        if self.last.is_none_or_before(at) {
            self.last = Some(at);
        }
        if active {
            if self.open[me].is_some() {
                // Two starts in a row: an end edge was lost; the first pulse is unusable.
                self.noise += 1;
            }
            self.open[me] = Some(at);
        } else {
            let Some(start) = self.open[me].take() else {
                self.noise += 1;
                return;
            };
            let width = at.mono_ns.saturating_sub(start.mono_ns);
            if width < self.config.min_pulse_ns || width > self.config.max_pulse_ns {
                self.noise += 1;
                return;
            }
            self.add_pulse((start.mono_ns, at.mono_ns, line == DataLine::D1, start));
        }
    }

    /// Keeps the pulses sorted by start (the two lines' edges may arrive out of order) and
    /// the longest bit interval up to date.
    fn add_pulse(&mut self, pulse: (u64, u64, bool, Timestamp)) {
        let at = self.pulses.partition_point(|p| p.0 <= pulse.0);
        self.pulses.insert(at, pulse);
        if at + 1 == self.pulses.len() {
            if let Some(prev) = at.checked_sub(1).map(|i| self.pulses[i].0) {
                self.longest_interval_ns = self.longest_interval_ns.max(pulse.0 - prev);
            }
        } else {
            // Inserted between two pulses: their interval is split, so measure again.
            self.longest_interval_ns = self
                .pulses
                .windows(2)
                .map(|w| w[1].0 - w[0].0)
                .max()
                .unwrap_or(0);
        }
    }

    /// When `poll` should next be called (the end-of-frame deadline), in the edges' scale:
    /// the last edge plus the gap the frame's bit timing gives (see the module docs), and
    /// never before a pulse still open could have ended.
    pub fn deadline_ns(&self) -> Option<u64> {
        let last = self.last?.mono_ns;
        let mut deadline = last.saturating_add(self.config.gap_ns(self.longest_interval_ns));
        for start in self.open.iter().flatten() {
            deadline = deadline.max(start.mono_ns.saturating_add(self.config.max_pulse_ns));
        }
        Some(deadline.min(self.latest_deadline_ns().unwrap_or(u64::MAX)))
    }

    /// The last edge plus the whole frame gap: a frame ends then whatever else is known.
    pub fn latest_deadline_ns(&self) -> Option<u64> {
        self.last
            .map(|l| l.mono_ns.saturating_add(self.config.frame_gap_ns))
    }

    /// Ends the frame if the lines have been silent long enough at `now_ns` (see
    /// [`Self::deadline_ns`]). Returns the frame if it held at least one bit; pure noise
    /// bursts are dropped.
    pub fn poll(&mut self, now_ns: u64) -> Option<WiegandFrame> {
        self.poll_unless_pending(now_ns, false)
    }

    /// [`Self::poll`], told whether edges of this reader are known to be on their way (read
    /// from the hardware, not yet given to `on_edge`): then the frame ends only at
    /// [`Self::latest_deadline_ns`], so a late line thread cannot cut it in two.
    pub fn poll_unless_pending(&mut self, now_ns: u64, pending: bool) -> Option<WiegandFrame> {
        let deadline = if pending {
            self.latest_deadline_ns()?
        } else {
            self.deadline_ns()?
        };
        if now_ns < deadline {
            return None;
        }
        // A pulse still open after the whole gap is a stuck line, not a bit.
        let stuck = self.open.iter().filter(|o| o.is_some()).count();
        let mut noise = self.noise + u32::try_from(stuck).unwrap_or(u32::MAX);
        let last = self.last.take();
        self.open = [None, None];
        self.noise = 0;
        self.longest_interval_ns = 0;
        let pulses = std::mem::take(&mut self.pulses);
        // Both lines active at once is interference, not data: drop every pulse that
        // overlaps a pulse on the other line.
        let mut overlapped = vec![false; pulses.len()];
        for i in 0..pulses.len() {
            for j in i + 1..pulses.len() {
                if pulses[j].0 > pulses[i].1 {
                    break;
                }
                if pulses[j].2 != pulses[i].2 {
                    overlapped[i] = true;
                    overlapped[j] = true;
                }
            }
        }
        let mut out = WiegandBits::new();
        let mut first = None;
        for (p, bad) in pulses.iter().zip(&overlapped) {
            if *bad {
                noise += 1;
                continue;
            }
            if first.is_none() {
                first = Some(p.3);
            }
            out.push(p.2);
        }
        let (Some(first), Some(last)) = (first, last) else {
            return None;
        };
        Some(WiegandFrame {
            bits: out,
            first_edge: first,
            last_edge: last,
            noise_pulses: noise,
        })
    }
}

/// `Option<Timestamp>` comparisons written out, because `Option::is_none_or` is newer
/// than our MSRV (1.85).
trait OptionTimestampExt {
    fn is_none_or_before(&self, t: Timestamp) -> bool;
}

impl OptionTimestampExt for Option<Timestamp> {
    fn is_none_or_before(&self, t: Timestamp) -> bool {
        match self {
            None => true,
            Some(x) => x.mono_ns <= t.mono_ns,
        }
    }
}

/// The edges a reader produces for `bits`: each bit a `pulse_ns` pulse on D0 or D1, bit
/// starts `interval_ns` apart from `start_ns`. Used by the sim and by tests.
pub fn edges_for_bits(
    bits: &WiegandBits,
    start_ns: u64,
    pulse_ns: u64,
    interval_ns: u64,
) -> Vec<(DataLine, bool, u64)> {
    let mut out = Vec::with_capacity(bits.len() * 2);
    for (i, b) in bits.iter().enumerate() {
        let line = if b { DataLine::D1 } else { DataLine::D0 };
        let t = start_ns + interval_ns * u64::try_from(i).unwrap_or(u64::MAX / 2);
        out.push((line, true, t));
        out.push((line, false, t + pulse_ns));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wiegand::format::{decode_bits, keypad_frame, Decoded, Format, FormatTable};
    use crate::wiegand::BadFormatReason;

    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;

    /// A recorded capture: (line, start µs, width µs) per pulse, as a logic analyser shows it.
    /// This one is an HID reader sending facility 18, card 4660 (H10301) with 1.9–2.1 ms
    /// jitter between bits and 48–56 µs pulses.
    fn recorded_h10301() -> Vec<(DataLine, u64, u64)> {
        let bits = Format::standard("h10301")
            .unwrap()
            .encode(4660, Some(18))
            .unwrap();
        let jitter = [0u64, 40, 95, 10, 60, 25, 80, 5];
        let widths = [50u64, 48, 52, 56, 49, 51];
        let mut t = 1_000 * US;
        bits.iter()
            .enumerate()
            .map(|(i, b)| {
                let start = t;
                t += 1_900 * US + jitter[i % jitter.len()] * US;
                (
                    if b { DataLine::D1 } else { DataLine::D0 },
                    start,
                    widths[i % widths.len()] * US,
                )
            })
            .collect()
    }

    /// The recorded reader's format: HID H10301, which ZK calls Wiegand26a.
    fn h10301_table() -> FormatTable {
        FormatTable::single(Format::standard("h10301").unwrap())
    }

    fn feed(cap: &mut WiegandCapture, pulses: &[(DataLine, u64, u64)]) -> Vec<WiegandFrame> {
        let mut edges: Vec<(DataLine, bool, u64)> = Vec::new();
        for &(line, start, width) in pulses {
            edges.push((line, true, start));
            edges.push((line, false, start + width));
        }
        edges.sort_by_key(|e| e.2);
        let mut frames = Vec::new();
        for (line, active, t) in edges {
            // Whoever drives the capture polls at each edge, then at the deadline.
            if let Some(f) = cap.poll(t) {
                frames.push(f);
            }
            cap.on_edge(line, active, Timestamp::from_anchor_ns(t));
        }
        while let Some(d) = cap.deadline_ns() {
            if let Some(f) = cap.poll(d) {
                frames.push(f);
            }
        }
        frames
    }

    #[test]
    fn recorded_frame_decodes() {
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        let pulses = recorded_h10301();
        let frames = feed(&mut cap, &pulses);
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert_eq!(f.noise_pulses, 0);
        assert_eq!(f.bits.len(), 26);
        let (last_line, last_start, last_width) = pulses[25];
        let _ = last_line;
        assert_eq!(f.last_edge.mono_ns, last_start + last_width);
        assert_eq!(f.first_edge.mono_ns, pulses[0].1);
        assert_eq!(
            decode_bits(&f.bits, &h10301_table()),
            Decoded::Card {
                number: 4660,
                site_code: Some(18),
                format: "wiegand26a".into()
            }
        );
        // Not before the gap has passed: four of the frame's own bit periods (its longest
        // interval is 1.995 ms), not the 25 ms frame gap.
        let replay = |config: CaptureConfig| {
            let mut cap = WiegandCapture::new(config);
            for &(line, start, width) in &pulses {
                cap.on_edge(line, true, Timestamp::from_anchor_ns(start));
                cap.on_edge(line, false, Timestamp::from_anchor_ns(start + width));
            }
            cap
        };
        let end = pulses[25].1 + pulses[25].2;
        let mut cap = replay(CaptureConfig::default());
        assert_eq!(cap.deadline_ns(), Some(end + 4 * 1_995 * US));
        assert!(cap.poll(end + 4 * 1_995 * US - 1).is_none());
        assert!(cap.poll(end + 4 * 1_995 * US).is_some());
        // With end_bit_periods = 0 the fixed frame gap ends it, as before.
        let mut cap = replay(CaptureConfig::default().with_end_bit_periods(0));
        assert!(cap.poll(end + 24 * MS).is_none());
        assert!(cap.poll(end + 25 * MS).is_some());
        // Edges known to be on their way hold the frame open up to the frame gap.
        let mut cap = replay(CaptureConfig::default());
        assert!(cap.poll_unless_pending(end + 10 * MS, true).is_none());
        assert!(cap.poll_unless_pending(end + 25 * MS, true).is_some());
    }

    #[test]
    fn the_gap_follows_the_bit_period_within_its_bounds() {
        let config = CaptureConfig::default();
        assert_eq!(config.gap_ns(0), 25 * MS); // one pulse so far: the whole gap
        assert_eq!(config.gap_ns(200 * US), 2 * MS); // fast reader: the 2 ms floor
        assert_eq!(config.gap_ns(MS), 4 * MS);
        assert_eq!(config.gap_ns(2 * MS), 8 * MS);
        assert_eq!(config.gap_ns(20 * MS), 25 * MS); // slowest standard reader: the cap
                                                     // A single pulse waits the whole frame gap for the next one; a second pulse 20 ms
                                                     // later (the slowest standard pace) still joins the frame.
        let mut cap = WiegandCapture::new(config);
        let t = |us: u64| Timestamp::from_anchor_ns(us * US);
        cap.on_edge(DataLine::D1, true, t(1_000));
        cap.on_edge(DataLine::D1, false, t(1_050));
        assert_eq!(cap.deadline_ns(), Some(1_050 * US + 25 * MS));
        assert!(cap.poll(21_000 * US).is_none());
        cap.on_edge(DataLine::D0, true, t(21_000));
        cap.on_edge(DataLine::D0, false, t(21_050));
        let f = cap.poll(21_050 * US + 25 * MS).unwrap();
        assert_eq!(f.bits.to_string(), "10");
        // An open pulse is waited for until it could have ended (2 ms), even at a fast pace.
        let mut cap = WiegandCapture::new(config);
        for i in 0..4u64 {
            cap.on_edge(DataLine::D0, true, t(i * 200));
            cap.on_edge(DataLine::D0, false, t(i * 200 + 50));
        }
        cap.on_edge(DataLine::D1, true, t(800));
        assert_eq!(cap.deadline_ns(), Some(800 * US + 2 * MS));
    }

    #[test]
    fn a_frame_paced_at_200_us_ends_2_ms_after_its_last_edge() {
        let bits = Format::standard("wiegand26")
            .unwrap()
            .encode(123_456, None)
            .unwrap();
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        let edges = edges_for_bits(&bits, 0, 50 * US, 200 * US);
        for &(line, active, at) in &edges {
            cap.on_edge(line, active, Timestamp::from_anchor_ns(at));
        }
        let last = edges.last().unwrap().2;
        assert!(cap.poll(last + 2 * MS - 1).is_none());
        assert_eq!(cap.poll(last + 2 * MS).unwrap().bits, bits);
    }

    #[test]
    fn noise_pulses_are_dropped() {
        let mut pulses = recorded_h10301();
        // A 1 µs glitch on D0 between bits 3 and 4, a 3 ms "pulse" (stuck) on D1 after bit 10,
        // and a simultaneous D0+D1 burst after bit 20.
        let glitch = (DataLine::D0, pulses[3].1 + 500 * US, US);
        let stuck_at = pulses[10].1 + 200 * US;
        let long = (DataLine::D1, stuck_at, 3 * MS);
        let both_at = pulses[20].1 + 300 * US;
        pulses.push(glitch);
        // Shift everything after bit 10 so the long pulse does not overlap real bits.
        for p in pulses.iter_mut().skip(11).take(15) {
            p.1 += 4 * MS;
        }
        pulses.push(long);
        pulses.push((DataLine::D0, both_at + 4 * MS, 50 * US));
        pulses.push((DataLine::D1, both_at + 4 * MS + 10 * US, 50 * US));
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        let frames = feed(&mut cap, &pulses);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].noise_pulses, 4);
        assert_eq!(
            decode_bits(&frames[0].bits, &h10301_table()),
            Decoded::Card {
                number: 4660,
                site_code: Some(18),
                format: "wiegand26a".into()
            }
        );
        // An end edge without a start is noise too, and a frame of only noise is dropped.
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        cap.on_edge(DataLine::D1, false, Timestamp::from_anchor_ns(5 * MS));
        assert!(cap.poll(100 * MS).is_none());
        assert!(cap.deadline_ns().is_none());
    }

    #[test]
    fn interrupted_frame_becomes_two_bad_frames() {
        let mut pulses = recorded_h10301();
        // The reader's cable is disturbed for 40 ms after bit 12.
        for p in pulses.iter_mut().skip(13) {
            p.1 += 40 * MS;
        }
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        let frames = feed(&mut cap, &pulses);
        assert_eq!(
            frames.iter().map(|f| f.bits.len()).collect::<Vec<_>>(),
            vec![13, 13]
        );
        for f in &frames {
            assert!(matches!(
                decode_bits(&f.bits, &FormatTable::standard()),
                Decoded::BadFormat {
                    reason: BadFormatReason::UnknownLength,
                    ..
                }
            ));
        }
    }

    #[test]
    fn keypad_bursts_are_separate_frames() {
        // "12#" on an 8-bit keypad: one 8-bit frame per key, 300 ms between keys.
        let mut pulses = Vec::new();
        for (k, key) in ['1', '2', '#'].into_iter().enumerate() {
            let bits = keypad_frame(key, true).unwrap();
            let base = 10 * MS + 300 * MS * u64::try_from(k).unwrap();
            for (i, b) in bits.iter().enumerate() {
                let line = if b { DataLine::D1 } else { DataLine::D0 };
                pulses.push((line, base + 2 * MS * u64::try_from(i).unwrap(), 50 * US));
            }
        }
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        let keys: String = feed(&mut cap, &pulses)
            .iter()
            .map(|f| match decode_bits(&f.bits, &FormatTable::standard()) {
                Decoded::Keys(k) => k,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, "12#");
    }

    #[test]
    fn out_of_order_delivery_is_sorted_by_edge_time() {
        let pulses = recorded_h10301();
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        // All D0 pulses first, then all D1 pulses: what two reader threads might deliver.
        for want in [DataLine::D0, DataLine::D1] {
            for &(line, start, width) in pulses.iter().filter(|p| p.0 == want) {
                cap.on_edge(line, true, Timestamp::from_anchor_ns(start));
                cap.on_edge(line, false, Timestamp::from_anchor_ns(start + width));
            }
        }
        let f = cap.poll(u64::MAX / 2).unwrap();
        assert_eq!(
            f.bits,
            Format::standard("h10301")
                .unwrap()
                .encode(4660, Some(18))
                .unwrap()
        );
    }

    #[test]
    fn overlap_is_judged_by_time_not_arrival_order() {
        // D0 pulse 200-250 µs arrives only after D1 pulse 400-450 µs started: no overlap.
        let mut cap = WiegandCapture::new(CaptureConfig::default());
        let t = |us: u64| Timestamp::from_anchor_ns(us * US);
        cap.on_edge(DataLine::D0, true, t(200));
        cap.on_edge(DataLine::D1, true, t(400));
        cap.on_edge(DataLine::D0, false, t(250));
        cap.on_edge(DataLine::D1, false, t(450));
        let f = cap.poll(u64::MAX / 2).unwrap();
        assert_eq!((f.bits.to_string(), f.noise_pulses), ("01".to_string(), 0));
        // Truly overlapping pulses are both dropped.
        cap.on_edge(DataLine::D0, true, t(1000));
        cap.on_edge(DataLine::D1, true, t(1020));
        cap.on_edge(DataLine::D0, false, t(1050));
        cap.on_edge(DataLine::D1, false, t(1070));
        cap.on_edge(DataLine::D1, true, t(3000));
        cap.on_edge(DataLine::D1, false, t(3050));
        let f = cap.poll(u64::MAX / 2).unwrap();
        assert_eq!((f.bits.to_string(), f.noise_pulses), ("1".to_string(), 2));
    }

    #[test]
    fn edges_for_bits_shape() {
        let bits = crate::wiegand::WiegandBits::from_bit_str("10").unwrap();
        let e = edges_for_bits(&bits, 100, 50, 2000);
        assert_eq!(
            e,
            vec![
                (DataLine::D1, true, 100),
                (DataLine::D1, false, 150),
                (DataLine::D0, true, 2100),
                (DataLine::D0, false, 2150)
            ]
        );
    }
}
