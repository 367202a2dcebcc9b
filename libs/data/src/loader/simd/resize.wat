;; Separable resampling of interleaved 8-bit RGB into normalised float32, with 128-bit SIMD.
;; Driven by resize.ts (wasmResizeNormalise), which lays out the buffers and the per-axis filters
;; (lo: first source pixel, taps: how many, w: maxTaps weights per output; see axisFilter).
;; The vertical pass runs first, on the bytes: a source row is contiguous, so 16 bytes at a
;; time widen to four f32x4 and take one multiply-add per tap each. The horizontal pass then
;; reads one RGB pixel as an f32x4 (the fourth lane is the next pixel's red, weighted and then
;; dropped), and folds the mirror and the normalisation into the store.
(module
  (import "env" "memory" (memory 1))

  ;; dst row y (byte stride dstStride, float32) = Σ_k w[y·maxTaps + k] · src row lo[y] + k,
  ;; over rowBytes bytes rounded up to 16 (the caller pads src and dst by 16 bytes).
  (func (export "resize_vertical")
    (param $src i32) (param $srcStride i32) (param $rowBytes i32)
    (param $lo i32) (param $taps i32) (param $w i32) (param $maxTaps i32)
    (param $rows i32) (param $dst i32) (param $dstStride i32)
    (local $y i32) (local $i i32) (local $k i32) (local $n i32) (local $p i32) (local $wp i32)
    (local $d i32) (local $base i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $v v128) (local $h v128) (local $wk v128)
    (loop $ys
      (local.set $n (i32.load (i32.add (local.get $taps) (i32.shl (local.get $y) (i32.const 2)))))
      (local.set $base
        (i32.add (local.get $src)
          (i32.mul (i32.load (i32.add (local.get $lo) (i32.shl (local.get $y) (i32.const 2)))) (local.get $srcStride))))
      (local.set $wp (i32.add (local.get $w) (i32.shl (i32.mul (local.get $y) (local.get $maxTaps)) (i32.const 2))))
      (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $y) (local.get $dstStride))))
      (local.set $i (i32.const 0))
      (loop $is
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $base) (local.get $i)))
        (local.set $k (i32.const 0))
        (loop $ks
          (local.set $wk (v128.load32_splat (i32.add (local.get $wp) (i32.shl (local.get $k) (i32.const 2)))))
          (local.set $v (v128.load (local.get $p)))
          (local.set $h (i16x8.extend_low_i8x16_u (local.get $v)))
          (local.set $a0 (f32x4.add (local.get $a0)
            (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $h))) (local.get $wk))))
          (local.set $a1 (f32x4.add (local.get $a1)
            (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $h))) (local.get $wk))))
          (local.set $h (i16x8.extend_high_i8x16_u (local.get $v)))
          (local.set $a2 (f32x4.add (local.get $a2)
            (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_low_i16x8_u (local.get $h))) (local.get $wk))))
          (local.set $a3 (f32x4.add (local.get $a3)
            (f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_high_i16x8_u (local.get $h))) (local.get $wk))))
          (local.set $p (i32.add (local.get $p) (local.get $srcStride)))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $ks (i32.lt_u (local.get $k) (local.get $n))))
        (local.set $p (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 2))))
        (v128.store offset=0 (local.get $p) (local.get $a0))
        (v128.store offset=16 (local.get $p) (local.get $a1))
        (v128.store offset=32 (local.get $p) (local.get $a2))
        (v128.store offset=48 (local.get $p) (local.get $a3))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $is (i32.lt_u (local.get $i) (local.get $rowBytes))))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br_if $ys (i32.lt_u (local.get $y) (local.get $rows)))))

  ;; dst (size × size × 3 float32, rows × size of them) pixel (y, ox) =
  ;; (Σ_k w[x·maxTaps + k] · src row y pixel lo[x] + k) · scale + bias, with x = ox, or size-1-ox
  ;; when mirrored. Stores run left to right so each 16-byte store's spill into the next pixel
  ;; is overwritten; the caller pads dst by 16 bytes for the last one.
  (func (export "resize_horizontal")
    (param $src i32) (param $srcStride i32)
    (param $lo i32) (param $taps i32) (param $w i32) (param $maxTaps i32)
    (param $size i32) (param $rows i32) (param $flip i32)
    (param $sc0 f32) (param $sc1 f32) (param $sc2 f32) (param $b0 f32) (param $b1 f32) (param $b2 f32)
    (param $dst i32)
    (local $y i32) (local $ox i32) (local $x i32) (local $k i32) (local $n i32) (local $p i32)
    (local $wp i32) (local $row i32) (local $o i32)
    (local $scale v128) (local $bias v128) (local $acc v128)
    (local.set $scale
      (f32x4.replace_lane 2 (f32x4.replace_lane 1 (f32x4.splat (local.get $sc0)) (local.get $sc1)) (local.get $sc2)))
    (local.set $bias
      (f32x4.replace_lane 2 (f32x4.replace_lane 1 (f32x4.splat (local.get $b0)) (local.get $b1)) (local.get $b2)))
    (local.set $o (local.get $dst))
    (loop $ys
      (local.set $row (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $srcStride))))
      (local.set $ox (i32.const 0))
      (loop $xs
        (local.set $x
          (select (i32.sub (i32.sub (local.get $size) (i32.const 1)) (local.get $ox)) (local.get $ox) (local.get $flip)))
        (local.set $n (i32.load (i32.add (local.get $taps) (i32.shl (local.get $x) (i32.const 2)))))
        (local.set $p
          (i32.add (local.get $row)
            (i32.mul (i32.load (i32.add (local.get $lo) (i32.shl (local.get $x) (i32.const 2)))) (i32.const 12))))
        (local.set $wp (i32.add (local.get $w) (i32.shl (i32.mul (local.get $x) (local.get $maxTaps)) (i32.const 2))))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $k (i32.const 0))
        (loop $ks
          (local.set $acc (f32x4.add (local.get $acc)
            (f32x4.mul (v128.load (local.get $p)) (v128.load32_splat (local.get $wp)))))
          (local.set $p (i32.add (local.get $p) (i32.const 12)))
          (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $ks (i32.lt_u (local.get $k) (local.get $n))))
        (v128.store (local.get $o) (f32x4.add (f32x4.mul (local.get $acc) (local.get $scale)) (local.get $bias)))
        (local.set $o (i32.add (local.get $o) (i32.const 12)))
        (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
        (br_if $xs (i32.lt_u (local.get $ox) (local.get $size))))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br_if $ys (i32.lt_u (local.get $y) (local.get $rows))))))
