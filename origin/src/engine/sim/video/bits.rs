//! Bit-level writing of H.264 RBSPs (fixed-width fields and Exp-Golomb codes) and NAL
//! unit framing with emulation prevention (H.264 7.3.1, 7.4.1, 9.1).

/// Writes bits most-significant first into a byte vector.
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Pending bits, right-aligned; fewer than 8 between calls.
    acc: u64,
    pending: u32,
}

impl BitWriter {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(bytes),
            acc: 0,
            pending: 0,
        }
    }

    /// Writes the low `nbits` bits of `value` (`nbits` ≤ 32), most significant first.
    pub(crate) fn put(&mut self, nbits: u32, value: u32) {
        debug_assert!(nbits <= 32);
        debug_assert!(nbits == 32 || u64::from(value) >> nbits == 0);
        if nbits == 0 {
            return;
        }
        self.acc = (self.acc << nbits) | u64::from(value);
        self.pending += nbits;
        while self.pending >= 8 {
            self.pending -= 8;
            self.buf.push((self.acc >> self.pending) as u8);
        }
        self.acc &= (1u64 << self.pending) - 1;
    }

    pub(crate) fn flag(&mut self, bit: bool) {
        self.put(1, u32::from(bit));
    }

    /// ue(v): unsigned Exp-Golomb (9.1). `value` must be below `u32::MAX`.
    pub(crate) fn ue(&mut self, value: u32) {
        assert!(value < u32::MAX, "ue(v) value out of range");
        let code = value + 1;
        let len = 32 - code.leading_zeros();
        self.put(len - 1, 0);
        self.put(len, code);
    }

    /// se(v): signed Exp-Golomb (9.1.1): k > 0 ↦ 2k − 1, k ≤ 0 ↦ −2k.
    pub(crate) fn se(&mut self, value: i32) {
        let v = i64::from(value);
        let code = if v > 0 { 2 * v - 1 } else { -2 * v };
        self.ue(u32::try_from(code).expect("se(v) value out of range"));
    }

    pub(crate) fn is_aligned(&self) -> bool {
        self.pending == 0
    }

    /// Zero bits up to the next byte boundary (pcm_alignment_zero_bit, alignment bits).
    pub(crate) fn align_zero(&mut self) {
        if self.pending > 0 {
            self.put(8 - self.pending, 0);
        }
    }

    /// rbsp_trailing_bits(): a stop bit of one, then zeros to the byte boundary.
    pub(crate) fn trailing_bits(&mut self) {
        self.put(1, 1);
        self.align_zero();
    }

    /// Raw bytes; the writer must be byte-aligned.
    pub(crate) fn bytes(&mut self, data: &[u8]) {
        assert!(self.is_aligned(), "raw bytes need a byte-aligned writer");
        self.buf.extend_from_slice(data);
    }

    /// The finished RBSP; the writer must be byte-aligned (end with `trailing_bits`).
    pub(crate) fn finish(self) -> Vec<u8> {
        assert!(self.is_aligned(), "RBSP must end byte-aligned");
        self.buf
    }
}

/// Appends `rbsp` to `out` with emulation prevention: a 0x03 byte goes after every two
/// consecutive zero bytes that would otherwise be followed by a byte ≤ 0x03 (7.4.1).
pub(crate) fn escape_into(rbsp: &[u8], out: &mut Vec<u8>) {
    out.reserve(rbsp.len() + rbsp.len() / 64 + 4);
    let mut zeros = 0u32;
    let mut start = 0;
    for (i, &b) in rbsp.iter().enumerate() {
        if zeros >= 2 && b <= 3 {
            out.extend_from_slice(&rbsp[start..i]);
            out.push(3);
            start = i;
            zeros = 0;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
    }
    out.extend_from_slice(&rbsp[start..]);
    // An RBSP never ends in a zero byte here (rbsp_trailing_bits), so no trailing 0x03
    // (needed only after cabac_zero_words) is required.
    debug_assert!(rbsp.last() != Some(&0));
}

/// One NAL unit: header byte (forbidden_zero_bit, nal_ref_idc, nal_unit_type) and the
/// escaped payload, without any start code or length prefix.
pub(crate) fn nal_unit(nal_ref_idc: u8, nal_unit_type: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + 8);
    out.push(nal_header(nal_ref_idc, nal_unit_type));
    escape_into(rbsp, &mut out);
    out
}

/// Appends one NAL unit to `out` with a 4-byte big-endian length prefix, as MP4 samples
/// store them (avcC lengthSizeMinusOne = 3).
pub(crate) fn push_length_prefixed_nal(
    out: &mut Vec<u8>,
    nal_ref_idc: u8,
    nal_unit_type: u8,
    rbsp: &[u8],
) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(nal_header(nal_ref_idc, nal_unit_type));
    escape_into(rbsp, out);
    let len = u32::try_from(out.len() - at - 4).expect("NAL unit over 4 GiB");
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn nal_header(nal_ref_idc: u8, nal_unit_type: u8) -> u8 {
    debug_assert!(nal_ref_idc < 4 && nal_unit_type < 32);
    (nal_ref_idc << 5) | nal_unit_type
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit_string(f: impl FnOnce(&mut BitWriter)) -> String {
        let mut w = BitWriter::with_capacity(16);
        f(&mut w);
        let pending = w.pending;
        let acc = w.acc;
        let mut s: String = w.buf.iter().map(|b| format!("{b:08b}")).collect();
        for i in (0..pending).rev() {
            s.push(if (acc >> i) & 1 == 1 { '1' } else { '0' });
        }
        s
    }

    #[test]
    fn unsigned_exp_golomb() {
        let cases = [
            (0, "1"),
            (1, "010"),
            (2, "011"),
            (3, "00100"),
            (4, "00101"),
            (6, "00111"),
            (7, "0001000"),
            (25, "000011010"),
            (30, "000011111"),
        ];
        for (v, bits) in cases {
            assert_eq!(bit_string(|w| w.ue(v)), bits, "ue({v})");
        }
        let max = bit_string(|w| w.ue(u32::MAX - 1));
        assert_eq!(max.len(), 63);
        assert!(max.starts_with(&"0".repeat(31)));
        assert!(max[31..].chars().all(|c| c == '1'));
    }

    #[test]
    fn signed_exp_golomb() {
        let cases = [
            (0, "1"),
            (1, "010"),
            (-1, "011"),
            (2, "00100"),
            (-2, "00101"),
            (3, "00110"),
            (-3, "00111"),
            (8, "000010000"),
        ];
        for (v, bits) in cases {
            assert_eq!(bit_string(|w| w.se(v)), bits, "se({v})");
        }
    }

    #[test]
    fn fixed_fields_alignment_and_trailing_bits() {
        assert_eq!(
            bit_string(|w| {
                w.put(3, 0b101);
                w.flag(true);
                w.put(8, 0x5a);
            }),
            "101101011010"
        );
        let mut w = BitWriter::with_capacity(4);
        w.put(3, 0b111);
        w.align_zero();
        assert!(w.is_aligned());
        w.bytes(&[0xab]);
        w.put(2, 0b01);
        w.trailing_bits();
        assert_eq!(w.finish(), vec![0b1110_0000, 0xab, 0b0110_0000]);
        let mut w = BitWriter::with_capacity(4);
        w.put(32, 0xdead_beef);
        w.put(32, 0x0102_0304);
        assert_eq!(w.finish(), vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    }

    fn escaped(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        escape_into(data, &mut out);
        out
    }

    #[test]
    fn emulation_prevention() {
        assert_eq!(escaped(&[0, 0, 0, 1]), vec![0, 0, 3, 0, 1]);
        assert_eq!(escaped(&[0, 0, 1]), vec![0, 0, 3, 1]);
        assert_eq!(escaped(&[0, 0, 2]), vec![0, 0, 3, 2]);
        assert_eq!(escaped(&[0, 0, 3]), vec![0, 0, 3, 3]);
        assert_eq!(escaped(&[0, 0, 4]), vec![0, 0, 4]);
        assert_eq!(escaped(&[0, 1, 0, 2]), vec![0, 1, 0, 2]);
        assert_eq!(
            escaped(&[0, 0, 0, 0, 0, 0, 0x80]),
            vec![0, 0, 3, 0, 0, 3, 0, 0, 0x80]
        );
        assert_eq!(
            escaped(&[5, 0, 0, 0x10, 0, 0, 1]),
            vec![5, 0, 0, 0x10, 0, 0, 3, 1]
        );
        // No escaped stream may contain a start-code prefix or 00 00 0x (x ≤ 2).
        let mut data = Vec::new();
        for i in 0..2000u32 {
            data.push(if i % 7 < 4 { 0 } else { (i % 5) as u8 });
        }
        data.push(0x80);
        let out = escaped(&data);
        for w in out.windows(3) {
            assert!(!(w[0] == 0 && w[1] == 0 && w[2] <= 2), "{w:?}");
        }
        // Removing every 0x03 that follows two zeros restores the input.
        let mut back = Vec::new();
        let mut zeros = 0;
        for &b in &out {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            back.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        assert_eq!(back, data);
    }

    #[test]
    fn nal_framing() {
        assert_eq!(
            nal_unit(3, 7, &[0x42, 0, 0, 1, 0x80]),
            vec![0x67, 0x42, 0, 0, 3, 1, 0x80]
        );
        let mut out = vec![9];
        push_length_prefixed_nal(&mut out, 2, 1, &[0, 0, 0, 0x80]);
        assert_eq!(out, vec![9, 0, 0, 0, 6, 0x41, 0, 0, 3, 0, 0x80]);
    }
}
