//! SHA-256 of the same bytes into two running hashes at once ([`update_both`]).
//!
//! A layer's file content is hashed twice: once for the layer key (the file's own
//! sha256) and once as part of the tar stream (the diff_id). One SHA-256 stream is
//! bound by the latency of SHA-NI's round instruction (each round needs the previous
//! one), which leaves the unit mostly idle: on this project's 2-core AMD EPYC (Zen 4)
//! the sha2 crate hashes 1.78 GB/s, and two independent streams interleaved on one
//! core 2.8–3.2 GB/s together (1.6–1.8×, docs/design.md "Two SHA-256 streams at
//! once"). sha2 hashes one stream at a time, so the interleaved compression is written
//! here with `core::arch` intrinsics, used only where the CPU reports SHA-NI at run
//! time; elsewhere (and for every block that has no partner) sha2's own compression
//! function does the work. The results are plain SHA-256, equal to sha2's for every
//! input (tests).

use sha2::block_api::compress256;

/// SHA-256's initial state.
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// One running SHA-256: the chaining state, an incomplete block and the length.
#[derive(Clone)]
pub(crate) struct Lane {
    state: [u32; 8],
    /// The start of a block whose rest has not arrived yet (`pending_len` bytes).
    pending: [u8; 64],
    pending_len: usize,
    /// Bytes hashed in all.
    len: u64,
}

impl Default for Lane {
    fn default() -> Self {
        Lane {
            state: IV,
            pending: [0; 64],
            pending_len: 0,
            len: 0,
        }
    }
}

impl Lane {
    /// Adds `data` to this hash alone.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        let rest = self.fill(data);
        let (blocks, tail) = rest.as_chunks::<64>();
        compress256(&mut self.state, blocks);
        self.keep(tail);
    }

    /// The digest of everything added.
    pub(crate) fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut block = [0u8; 64];
        block[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        block[self.pending_len] = 0x80;
        if self.pending_len >= 56 {
            compress256(&mut self.state, &[block]);
            block = [0; 64];
        }
        block[56..].copy_from_slice(&bits.to_be_bytes());
        compress256(&mut self.state, &[block]);
        let mut out = [0u8; 32];
        for (bytes, word) in out.chunks_exact_mut(4).zip(self.state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// Completes the pending block from the front of `data` (compressing it) and
    /// returns what is left, block-aligned; or keeps all of `data` as pending if it
    /// does not complete the block, and returns nothing.
    fn fill<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        if self.pending_len == 0 {
            return data;
        }
        let want = 64 - self.pending_len;
        if data.len() < want {
            self.pending[self.pending_len..self.pending_len + data.len()].copy_from_slice(data);
            self.pending_len += data.len();
            return &[];
        }
        self.pending[self.pending_len..].copy_from_slice(&data[..want]);
        compress256(&mut self.state, &[self.pending]);
        self.pending_len = 0;
        &data[want..]
    }

    /// Keeps `tail` (< 64 bytes, after [`Lane::fill`] emptied the pending block) for
    /// the next block.
    fn keep(&mut self, tail: &[u8]) {
        if !tail.is_empty() {
            self.pending[..tail.len()].copy_from_slice(tail);
            self.pending_len = tail.len();
        }
    }
}

/// Adds `data` to both `a` and `b` (which may have hashed different bytes before),
/// compressing the two streams' blocks interleaved where the CPU allows it.
pub(crate) fn update_both(a: &mut Lane, b: &mut Lane, data: &[u8]) {
    a.len += data.len() as u64;
    b.len += data.len() as u64;
    let (blocks_a, tail_a) = a.fill(data).as_chunks::<64>();
    let (blocks_b, tail_b) = b.fill(data).as_chunks::<64>();
    let paired = blocks_a.len().min(blocks_b.len());
    compress_pair(
        &mut a.state,
        &blocks_a[..paired],
        &mut b.state,
        &blocks_b[..paired],
    );
    compress256(&mut a.state, &blocks_a[paired..]);
    compress256(&mut b.state, &blocks_b[paired..]);
    a.keep(tail_a);
    b.keep(tail_b);
}

/// Compresses `blocks_a` into `a` and `blocks_b` (as many) into `b`.
fn compress_pair(a: &mut [u32; 8], blocks_a: &[[u8; 64]], b: &mut [u32; 8], blocks_b: &[[u8; 64]]) {
    debug_assert_eq!(blocks_a.len(), blocks_b.len());
    #[cfg(target_arch = "x86_64")]
    if shani::compress_pair(a, blocks_a, b, blocks_b) {
        return;
    }
    compress256(a, blocks_a);
    compress256(b, blocks_b);
}

/// Two SHA-256 compressions interleaved on SHA-NI. The only unsafe code of the
/// crate: `core::arch` intrinsics, called only after run-time detection.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod shani {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_extract_epi32, _mm_loadu_si128, _mm_set_epi32,
        _mm_set_epi64x, _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32,
        _mm_shuffle_epi8, _mm_shuffle_epi32,
    };

    /// SHA-256's round constants.
    #[rustfmt::skip]
    const K: [u32; 64] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1,
        0x923f_82a4, 0xab1c_5ed5, 0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3,
        0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174, 0xe49b_69c1, 0xefbe_4786,
        0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147,
        0x06ca_6351, 0x1429_2967, 0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13,
        0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85, 0xa2bf_e8a1, 0xa81a_664b,
        0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a,
        0x5b9c_ca4f, 0x682e_6ff3, 0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208,
        0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ];

    /// Compresses `blocks_a` into `a` and `blocks_b` into `b` (the same number of
    /// blocks) if this CPU has SHA-NI; `false` (and nothing done) if not.
    pub(super) fn compress_pair(
        a: &mut [u32; 8],
        blocks_a: &[[u8; 64]],
        b: &mut [u32; 8],
        blocks_b: &[[u8; 64]],
    ) -> bool {
        // std caches the answers: after the first call this is a few loads.
        let available = std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("sse4.1")
            && std::is_x86_feature_detected!("ssse3");
        if available {
            // SAFETY: the CPU has every feature `interleaved` is compiled for.
            unsafe { interleaved(a, blocks_a, b, blocks_b) };
        }
        available
    }

    /// The state as SHA-NI's two registers (ABEF, CDGH).
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn load_state(s: &[u32; 8]) -> (__m128i, __m128i) {
        let word = |i: usize| s[i].cast_signed();
        let abef = _mm_set_epi32(word(0), word(1), word(4), word(5));
        let cdgh = _mm_set_epi32(word(2), word(3), word(6), word(7));
        (abef, cdgh)
    }

    /// Inverse of [`load_state`].
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn store_state(s: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
        let words = [
            _mm_extract_epi32::<3>(abef),
            _mm_extract_epi32::<2>(abef),
            _mm_extract_epi32::<3>(cdgh),
            _mm_extract_epi32::<2>(cdgh),
            _mm_extract_epi32::<1>(abef),
            _mm_extract_epi32::<0>(abef),
            _mm_extract_epi32::<1>(cdgh),
            _mm_extract_epi32::<0>(cdgh),
        ];
        for (out, word) in s.iter_mut().zip(words) {
            *out = word.cast_unsigned();
        }
    }

    /// A block's 16 message words, big-endian, four to a register.
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    fn load_block(block: &[u8; 64]) -> [__m128i; 4] {
        let byte_swap = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
        let at: *const __m128i = block.as_ptr().cast();
        core::array::from_fn(|i| {
            // SAFETY: `at.add(i)` for i < 4 is 16 bytes inside the 64-byte block, and
            // `_mm_loadu_si128` has no alignment requirement.
            let word = unsafe { _mm_loadu_si128(at.add(i)) };
            _mm_shuffle_epi8(word, byte_swap)
        })
    }

    /// Compresses `blocks_a` into `a` and `blocks_b` into `b` (the same number of
    /// blocks), each round of one stream beside the same round of the other so the
    /// CPU overlaps their latencies.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE4.1 and SSSE3.
    #[target_feature(enable = "sha,sse4.1,ssse3")]
    unsafe fn interleaved(
        a: &mut [u32; 8],
        blocks_a: &[[u8; 64]],
        b: &mut [u32; 8],
        blocks_b: &[[u8; 64]],
    ) {
        let (mut abef_a, mut cdgh_a) = load_state(a);
        let (mut abef_b, mut cdgh_b) = load_state(b);
        for (block_a, block_b) in blocks_a.iter().zip(blocks_b) {
            let saved = (abef_a, cdgh_a, abef_b, cdgh_b);
            let mut wa = load_block(block_a);
            let mut wb = load_block(block_b);
            // Rounds 4r..4r+4 on message registers i (the newest), j, k, l (i+1..i+3
            // mod 4); from r = 4 on, register i first becomes the next four words.
            // A macro, not a loop, so every register index is a constant and the
            // message words stay in registers.
            macro_rules! rounds4 {
                ($r:literal, $i:literal, $j:literal, $k:literal, $l:literal, $schedule:literal) => {
                    if $schedule {
                        let next = |w: &[__m128i; 4]| {
                            let t = _mm_add_epi32(
                                _mm_sha256msg1_epu32(w[$i], w[$j]),
                                _mm_alignr_epi8::<4>(w[$l], w[$k]),
                            );
                            _mm_sha256msg2_epu32(t, w[$l])
                        };
                        wa[$i] = next(&wa);
                        wb[$i] = next(&wb);
                    }
                    let k = _mm_set_epi32(
                        K[4 * $r + 3].cast_signed(),
                        K[4 * $r + 2].cast_signed(),
                        K[4 * $r + 1].cast_signed(),
                        K[4 * $r].cast_signed(),
                    );
                    let ta = _mm_add_epi32(wa[$i], k);
                    let tb = _mm_add_epi32(wb[$i], k);
                    cdgh_a = _mm_sha256rnds2_epu32(cdgh_a, abef_a, ta);
                    cdgh_b = _mm_sha256rnds2_epu32(cdgh_b, abef_b, tb);
                    abef_a = _mm_sha256rnds2_epu32(abef_a, cdgh_a, _mm_shuffle_epi32::<0x0E>(ta));
                    abef_b = _mm_sha256rnds2_epu32(abef_b, cdgh_b, _mm_shuffle_epi32::<0x0E>(tb));
                };
            }
            rounds4!(0, 0, 1, 2, 3, false);
            rounds4!(1, 1, 2, 3, 0, false);
            rounds4!(2, 2, 3, 0, 1, false);
            rounds4!(3, 3, 0, 1, 2, false);
            rounds4!(4, 0, 1, 2, 3, true);
            rounds4!(5, 1, 2, 3, 0, true);
            rounds4!(6, 2, 3, 0, 1, true);
            rounds4!(7, 3, 0, 1, 2, true);
            rounds4!(8, 0, 1, 2, 3, true);
            rounds4!(9, 1, 2, 3, 0, true);
            rounds4!(10, 2, 3, 0, 1, true);
            rounds4!(11, 3, 0, 1, 2, true);
            rounds4!(12, 0, 1, 2, 3, true);
            rounds4!(13, 1, 2, 3, 0, true);
            rounds4!(14, 2, 3, 0, 1, true);
            rounds4!(15, 3, 0, 1, 2, true);
            abef_a = _mm_add_epi32(abef_a, saved.0);
            cdgh_a = _mm_add_epi32(cdgh_a, saved.1);
            abef_b = _mm_add_epi32(abef_b, saved.2);
            cdgh_b = _mm_add_epi32(cdgh_b, saved.3);
        }
        store_state(a, abef_a, cdgh_a);
        store_state(b, abef_b, cdgh_b);
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;

    /// A small deterministic generator (xorshift64*): reproducible random inputs.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }

        /// Fewer than `max` random bytes.
        fn some_bytes(&mut self, max: usize) -> Vec<u8> {
            let len = self.below(max);
            self.bytes(len)
        }
    }

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    /// Lengths around every block boundary that padding cares about, then random ones.
    fn lengths(rng: &mut Rng) -> Vec<usize> {
        let mut lengths: Vec<usize> = (0..=130).collect();
        for _ in 0..40 {
            lengths.push(rng.below(5000));
        }
        lengths
    }

    #[test]
    fn one_lane_is_sha256() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for len in lengths(&mut rng) {
            let data = rng.bytes(len);
            let mut lane = Lane::default();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let (piece, tail) = rest.split_at(rng.below(rest.len() + 1).max(1));
                lane.update(piece);
                rest = tail;
            }
            assert_eq!(lane.finalize(), sha256(&[&data]), "length {len}");
        }
    }

    #[test]
    fn both_lanes_are_sha256_after_any_prefixes_and_splits() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for round in 0..400 {
            // Different histories, so the lanes' pending blocks differ (or not).
            let prefix_a = rng.some_bytes(200);
            let prefix_b = if round % 4 == 0 {
                rng.bytes(prefix_a.len())
            } else {
                rng.some_bytes(200)
            };
            let shared = rng.some_bytes(if round % 10 == 0 { 64 } else { 9000 });
            let suffix_a = rng.some_bytes(100);
            let suffix_b = rng.some_bytes(100);
            let (mut a, mut b) = (Lane::default(), Lane::default());
            a.update(&prefix_a);
            b.update(&prefix_b);
            let mut rest = &shared[..];
            while !rest.is_empty() {
                let (piece, tail) = rest.split_at(rng.below(rest.len() + 1).max(1));
                update_both(&mut a, &mut b, piece);
                rest = tail;
            }
            update_both(&mut a, &mut b, &[]);
            a.update(&suffix_a);
            b.update(&suffix_b);
            assert_eq!(
                a.finalize(),
                sha256(&[&prefix_a, &shared, &suffix_a]),
                "round {round}, lane a"
            );
            assert_eq!(
                b.finalize(),
                sha256(&[&prefix_b, &shared, &suffix_b]),
                "round {round}, lane b"
            );
        }
    }

    #[test]
    fn the_paired_compression_is_sha256s_on_different_blocks_and_states() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        for count in [0, 1, 2, 3, 17, 100] {
            let blocks = |rng: &mut Rng| -> Vec<[u8; 64]> {
                (0..count)
                    .map(|_| std::array::from_fn(|_| rng.next() as u8))
                    .collect()
            };
            let (blocks_a, blocks_b) = (blocks(&mut rng), blocks(&mut rng));
            let state_a: [u32; 8] = std::array::from_fn(|_| rng.next() as u32);
            let state_b: [u32; 8] = std::array::from_fn(|_| rng.next() as u32);
            let (mut want_a, mut want_b) = (state_a, state_b);
            compress256(&mut want_a, &blocks_a);
            compress256(&mut want_b, &blocks_b);
            let (mut a, mut b) = (state_a, state_b);
            compress_pair(&mut a, &blocks_a, &mut b, &blocks_b);
            assert_eq!((a, b), (want_a, want_b), "{count} blocks");
            // Each path on its own: SHA-NI (where the CPU has it) and the fallback.
            #[cfg(target_arch = "x86_64")]
            {
                let (mut a, mut b) = (state_a, state_b);
                if shani::compress_pair(&mut a, &blocks_a, &mut b, &blocks_b) {
                    assert_eq!((a, b), (want_a, want_b), "{count} blocks, SHA-NI");
                }
            }
            let (mut a, mut b) = (state_a, state_b);
            compress256(&mut a, &blocks_a);
            compress256(&mut b, &blocks_b);
            assert_eq!((a, b), (want_a, want_b), "{count} blocks, fallback");
        }
    }
}
