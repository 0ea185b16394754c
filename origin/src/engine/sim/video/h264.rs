//! The H.264 syntax this encoder needs: a Constrained Baseline SPS and PPS, and CAVLC
//! slices whose macroblocks are I_PCM, P_L0_16x16 without residual, or P_Skip.
//!
//! Section numbers refer to ITU-T H.264 (08/2021).

use super::bits::BitWriter;

/// profile_idc: Baseline.
pub(crate) const PROFILE_IDC: u8 = 66;
/// constraint_set0_flag and constraint_set1_flag: Constrained Baseline (A.2.1.1).
pub(crate) const CONSTRAINT_FLAGS: u8 = 0b1100_0000;
/// level_idc 5.1: up to 36 864 macroblocks per frame, 983 040 per second.
pub(crate) const LEVEL_IDC: u8 = 51;

const LOG2_MAX_FRAME_NUM: u32 = 8;
/// mb_type of I_PCM in an I slice (Table 7-11); in a P slice it is 5 + 25 (7.4.5).
const MB_TYPE_I_PCM: u32 = 25;
const MB_TYPE_P_I_PCM: u32 = 5 + MB_TYPE_I_PCM;
const MB_TYPE_P_L0_16X16: u32 = 0;
/// Bytes in one I_PCM macroblock: 16×16 luma, then 8×8 Cb and 8×8 Cr (4:2:0, 8-bit).
pub(crate) const PCM_BYTES: usize = 384;

/// What the sequence parameter set says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqParams {
    /// Coded picture size in macroblocks.
    pub mb_width: u32,
    pub mb_height: u32,
    /// Luma pixels cropped off the right and bottom of the coded picture; even.
    pub crop_right: u32,
    pub crop_bottom: u32,
    /// Frames per second, signalled in the VUI timing info.
    pub fps: u32,
}

/// A motion vector in quarter luma samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Mv {
    pub x: i32,
    pub y: i32,
}

/// How a macroblock is coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MbCoding {
    /// I_PCM; the choosing callback has filled the 384 sample bytes.
    Pcm,
    /// Predicted from the reference frame (refIdx 0) with this motion vector and no
    /// residual: P_Skip where the skip prediction gives the vector, else P_L0_16x16.
    Inter(Mv),
}

/// Which picture a slice belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SliceKind {
    /// An IDR picture: an I slice, every macroblock I_PCM.
    Idr { idr_pic_id: u32 },
    /// A P picture that references the previous frame; `frame_num` counts frames since
    /// the IDR (taken modulo MaxFrameNum here).
    P { frame_num: u32 },
}

/// seq_parameter_set_rbsp() (7.3.2.1.1) with VUI (E.1.1).
pub(crate) fn sps_rbsp(sp: &SeqParams) -> Vec<u8> {
    assert!(sp.crop_right.is_multiple_of(2) && sp.crop_bottom.is_multiple_of(2));
    let mut w = BitWriter::with_capacity(64);
    w.put(8, u32::from(PROFILE_IDC));
    w.put(8, u32::from(CONSTRAINT_FLAGS)); // constraint_set0..5_flag, reserved_zero_2bits
    w.put(8, u32::from(LEVEL_IDC));
    w.ue(0); // seq_parameter_set_id
    w.ue(LOG2_MAX_FRAME_NUM - 4); // log2_max_frame_num_minus4
    w.ue(2); // pic_order_cnt_type: output order = decoding order
    w.ue(1); // max_num_ref_frames
    w.flag(false); // gaps_in_frame_num_value_allowed_flag
    w.ue(sp.mb_width - 1); // pic_width_in_mbs_minus1
    w.ue(sp.mb_height - 1); // pic_height_in_map_units_minus1
    w.flag(true); // frame_mbs_only_flag
    w.flag(true); // direct_8x8_inference_flag
    let crop = sp.crop_right > 0 || sp.crop_bottom > 0;
    w.flag(crop); // frame_cropping_flag
    if crop {
        // In units of CropUnitX = CropUnitY = 2 for 4:2:0 frames (7.4.2.1.1).
        w.ue(0); // frame_crop_left_offset
        w.ue(sp.crop_right / 2);
        w.ue(0); // frame_crop_top_offset
        w.ue(sp.crop_bottom / 2);
    }
    w.flag(true); // vui_parameters_present_flag
                  // vui_parameters()
    w.flag(true); // aspect_ratio_info_present_flag
    w.put(8, 1); // aspect_ratio_idc: 1:1 square samples
    w.flag(false); // overscan_info_present_flag
    w.flag(true); // video_signal_type_present_flag
    w.put(3, 5); // video_format: unspecified
    w.flag(false); // video_full_range_flag: studio range (16–235)
    w.flag(true); // colour_description_present_flag
    w.put(8, 1); // colour_primaries: BT.709
    w.put(8, 1); // transfer_characteristics: BT.709
    w.put(8, 1); // matrix_coefficients: BT.709
    w.flag(false); // chroma_loc_info_present_flag
    w.flag(true); // timing_info_present_flag
    w.put(32, 1); // num_units_in_tick
    w.put(32, sp.fps.checked_mul(2).expect("fps too large")); // time_scale: 2 ticks/frame
    w.flag(true); // fixed_frame_rate_flag
    w.flag(false); // nal_hrd_parameters_present_flag
    w.flag(false); // vcl_hrd_parameters_present_flag
    w.flag(false); // pic_struct_present_flag
    w.flag(true); // bitstream_restriction_flag
    w.flag(true); // motion_vectors_over_pic_boundaries_flag
    w.ue(0); // max_bytes_per_pic_denom: no limit
    w.ue(0); // max_bits_per_mb_denom: no limit
    w.ue(15); // log2_max_mv_length_horizontal
    w.ue(15); // log2_max_mv_length_vertical
    w.ue(0); // max_num_reorder_frames
    w.ue(1); // max_dec_frame_buffering
    w.trailing_bits();
    w.finish()
}

/// pic_parameter_set_rbsp() (7.3.2.2).
pub(crate) fn pps_rbsp() -> Vec<u8> {
    let mut w = BitWriter::with_capacity(16);
    w.ue(0); // pic_parameter_set_id
    w.ue(0); // seq_parameter_set_id
    w.flag(false); // entropy_coding_mode_flag: CAVLC
    w.flag(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1: ref_idx_l0 is never coded
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.flag(false); // weighted_pred_flag
    w.put(2, 0); // weighted_bipred_idc
    w.se(0); // pic_init_qp_minus26
    w.se(0); // pic_init_qs_minus26
    w.se(0); // chroma_qp_index_offset
    w.flag(true); // deblocking_filter_control_present_flag
    w.flag(false); // constrained_intra_pred_flag
    w.flag(false); // redundant_pic_cnt_present_flag
    w.trailing_bits();
    w.finish()
}

/// The RBSP of one slice covering the whole picture: slice_layer_without_partitioning_rbsp()
/// (7.3.2.8). `choose(mb_x, mb_y, pcm)` decides each macroblock in raster order; for
/// [`MbCoding::Pcm`] it must fill `pcm` (256 luma, 64 Cb, 64 Cr samples, each plane in
/// raster order). An IDR slice accepts only I_PCM.
pub(crate) fn slice_rbsp(
    sp: &SeqParams,
    kind: SliceKind,
    mut choose: impl FnMut(u32, u32, &mut [u8; PCM_BYTES]) -> MbCoding,
) -> Vec<u8> {
    let mbs = (sp.mb_width * sp.mb_height) as usize;
    let is_idr = matches!(kind, SliceKind::Idr { .. });
    let mut w = BitWriter::with_capacity(if is_idr {
        mbs * (PCM_BYTES + 2) + 32
    } else {
        256
    });

    // slice_header() (7.3.3)
    w.ue(0); // first_mb_in_slice
    w.ue(if is_idr { 7 } else { 5 }); // slice_type: I or P, all slices of the picture
    w.ue(0); // pic_parameter_set_id
    match kind {
        SliceKind::Idr { idr_pic_id } => {
            w.put(LOG2_MAX_FRAME_NUM, 0); // frame_num
            w.ue(idr_pic_id);
        }
        SliceKind::P { frame_num } => {
            w.put(LOG2_MAX_FRAME_NUM, frame_num % (1 << LOG2_MAX_FRAME_NUM));
            w.flag(false); // num_ref_idx_active_override_flag
            w.flag(false); // ref_pic_list_modification_flag_l0
        }
    }
    // dec_ref_pic_marking(): every picture is a reference picture (nal_ref_idc ≠ 0).
    if is_idr {
        w.flag(false); // no_output_of_prior_pics_flag
        w.flag(false); // long_term_reference_flag
    } else {
        w.flag(false); // adaptive_ref_pic_marking_mode_flag: sliding window
    }
    w.se(0); // slice_qp_delta (unused: nothing has a residual)
    w.ue(1); // disable_deblocking_filter_idc: off

    // slice_data() (7.3.4), CAVLC
    let mut pcm = [0u8; PCM_BYTES];
    // Motion of the macroblocks coded so far: None for intra, Some(mv) for inter.
    let mut field: Vec<Option<Mv>> = vec![None; mbs];
    let mut skip_run = 0u32;
    for mb_y in 0..sp.mb_height {
        for mb_x in 0..sp.mb_width {
            let addr = (mb_y * sp.mb_width + mb_x) as usize;
            match choose(mb_x, mb_y, &mut pcm) {
                MbCoding::Pcm => {
                    if !is_idr {
                        w.ue(skip_run); // mb_skip_run
                        skip_run = 0;
                        w.ue(MB_TYPE_P_I_PCM);
                    } else {
                        w.ue(MB_TYPE_I_PCM);
                    }
                    w.align_zero(); // pcm_alignment_zero_bit
                    w.bytes(&pcm);
                    field[addr] = None;
                }
                MbCoding::Inter(mv) => {
                    assert!(!is_idr, "an IDR picture holds only I_PCM macroblocks");
                    let nb = Neighbours::of(&field, sp.mb_width, mb_x, mb_y);
                    if nb.skip_mv() == mv {
                        skip_run += 1;
                    } else {
                        w.ue(skip_run); // mb_skip_run
                        skip_run = 0;
                        w.ue(MB_TYPE_P_L0_16X16);
                        // mb_pred(): ref_idx_l0 absent (one active reference).
                        let pred = nb.median_mv();
                        w.se(mv.x - pred.x); // mvd_l0[0][0][0]
                        w.se(mv.y - pred.y); // mvd_l0[0][0][1]
                        w.ue(0); // coded_block_pattern me(v): inter codeNum 0 = no residual
                    }
                    field[addr] = Some(mv);
                }
            }
        }
    }
    if skip_run > 0 {
        w.ue(skip_run);
    }
    w.trailing_bits(); // rbsp_slice_trailing_bits() (no cabac_zero_words with CAVLC)
    w.finish()
}

/// A neighbouring 16×16 partition as motion vector prediction sees it (8.4.1.3.2).
#[derive(Clone, Copy, Debug)]
struct Neighbour {
    available: bool,
    /// 0 for an inter macroblock, −1 for an intra or unavailable one.
    ref_idx: i32,
    /// (0, 0) unless `ref_idx` is 0.
    mv: Mv,
}

/// The neighbours A (left), B (above) and C (above right, or D above left where C is not
/// available) of a 16×16 partition (6.4.11.7).
#[derive(Clone, Copy, Debug)]
struct Neighbours {
    a: Neighbour,
    b: Neighbour,
    c: Neighbour,
}

impl Neighbours {
    fn of(field: &[Option<Mv>], mb_width: u32, mb_x: u32, mb_y: u32) -> Self {
        let at = |dx: i64, dy: i64| {
            let (x, y) = (i64::from(mb_x) + dx, i64::from(mb_y) + dy);
            if x < 0 || y < 0 || x >= i64::from(mb_width) {
                return Neighbour {
                    available: false,
                    ref_idx: -1,
                    mv: Mv::default(),
                };
            }
            // Only macroblocks already coded (left, or a row above) are ever asked for.
            match field[(y * i64::from(mb_width) + x) as usize] {
                Some(mv) => Neighbour {
                    available: true,
                    ref_idx: 0,
                    mv,
                },
                None => Neighbour {
                    available: true,
                    ref_idx: -1,
                    mv: Mv::default(),
                },
            }
        };
        let c = at(1, -1);
        Neighbours {
            a: at(-1, 0),
            b: at(0, -1),
            c: if c.available { c } else { at(-1, -1) },
        }
    }

    /// mvpL0 for a 16×16 partition with refIdxL0 = 0 (8.4.1.3, 8.4.1.3.1).
    fn median_mv(&self) -> Mv {
        let Neighbours { a, mut b, mut c } = *self;
        if !b.available && !c.available && a.available {
            b = a;
            c = a;
        }
        let matching = [a, b, c].iter().filter(|n| n.ref_idx == 0).count();
        if matching == 1 {
            [a, b, c].into_iter().find(|n| n.ref_idx == 0).unwrap().mv
        } else {
            Mv {
                x: median(a.mv.x, b.mv.x, c.mv.x),
                y: median(a.mv.y, b.mv.y, c.mv.y),
            }
        }
    }

    /// The motion vector a P_Skip macroblock gets here (8.4.1.1).
    fn skip_mv(&self) -> Mv {
        let (a, b) = (self.a, self.b);
        let zero = Mv::default();
        if !a.available
            || !b.available
            || (a.ref_idx == 0 && a.mv == zero)
            || (b.ref_idx == 0 && b.mv == zero)
        {
            zero
        } else {
            self.median_mv()
        }
    }
}

fn median(a: i32, b: i32, c: i32) -> i32 {
    a.max(b).min(a.min(b).max(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_three() {
        assert_eq!(median(1, 2, 3), 2);
        assert_eq!(median(3, 1, 2), 2);
        assert_eq!(median(2, 3, 1), 2);
        assert_eq!(median(-5, 8, 8), 8);
        assert_eq!(median(0, 0, 7), 0);
    }

    fn field_of(w: u32, h: u32, f: impl Fn(u32, u32) -> Option<Mv>) -> Vec<Option<Mv>> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    }

    #[test]
    fn uniform_motion_needs_a_vector_difference_only_at_the_first_macroblock() {
        let v = Mv { x: 8, y: -4 };
        for (w, h) in [(1, 1), (1, 3), (4, 1), (5, 4)] {
            let field = field_of(w, h, |_, _| Some(v));
            for y in 0..h {
                for x in 0..w {
                    let nb = Neighbours::of(&field, w, x, y);
                    let want = if (x, y) == (0, 0) { Mv::default() } else { v };
                    assert_eq!(nb.median_mv(), want, "{w}x{h} at ({x},{y})");
                    // P_Skip reproduces v only where both A and B exist.
                    let skip = if x > 0 && y > 0 { v } else { Mv::default() };
                    assert_eq!(nb.skip_mv(), skip, "{w}x{h} at ({x},{y})");
                }
            }
        }
    }

    #[test]
    fn intra_neighbours_count_as_other_references() {
        let v = Mv { x: 8, y: 0 };
        // The rightmost column is intra: the macroblock left of it sees C intra → median
        // of (v, v, 0) = v; the first macroblock of the next row under an intra one.
        let field = field_of(3, 2, |x, _| if x == 2 { None } else { Some(v) });
        assert_eq!(Neighbours::of(&field, 3, 1, 1).median_mv(), v);
        // Only B inter (A unavailable, C intra): B's vector alone.
        let field = field_of(2, 2, |x, y| if y == 0 && x == 1 { None } else { Some(v) });
        assert_eq!(Neighbours::of(&field, 2, 0, 1).median_mv(), v);
        // A intra with B and C unavailable: zero.
        let field = field_of(2, 1, |x, _| if x == 0 { None } else { Some(v) });
        assert_eq!(Neighbours::of(&field, 2, 1, 0).median_mv(), Mv::default());
    }
}
