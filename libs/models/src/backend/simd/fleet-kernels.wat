;; Hand-written WebAssembly SIMD kernels that work in place on tfjs-backend-wasm's heap
;; (they import its WebAssembly.Memory). Assembled by scripts/assemble-wat.mjs into
;; fleet-kernels.wasm.ts; fleet-kernels.spec.ts checks that the committed bytes match.
;; All pointers are byte offsets into that memory; tensors are float32, NHWC.
(module
  (import "env" "memory" (memory 1))

  ;; dW[kh, kw, ci, co] += Σ_{r, ow} x[n, oh*sh + kh - pt, ow*sw + kw - pl, ci] · dy[r, ow, co]
  ;; for the output rows r = n*OH + oh in [r0, r1), ci in [ci0, ci1) (multiples of 4) and
  ;; co in [co0, co1) (multiples of 8). A 4×8 block of dW stays in 8 registers while the
  ;; pixels of all the rows stream by: the caller picks row chunks and channel tiles that
  ;; fit the cache, so the long contraction N·OH·OW never streams from memory per block.
  (func (export "conv2d_filter_grad_4x8")
    (param $x i32) (param $dy i32) (param $dw i32)
    (param $H i32) (param $W i32) (param $cin i32)
    (param $OH i32) (param $OW i32) (param $cout i32)
    (param $KH i32) (param $KW i32) (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (param $r0 i32) (param $r1 i32) (param $ci0 i32) (param $ci1 i32) (param $co0 i32) (param $co1 i32)
    (local $kh i32) (local $kw i32) (local $owLo i32) (local $owHi i32) (local $t i32)
    (local $ci i32) (local $co i32) (local $r i32) (local $n i32) (local $oh i32) (local $ih i32)
    (local $xp i32) (local $dyp i32) (local $dwp i32) (local $cnt i32)
    (local $xStep i32) (local $dyStep i32) (local $dwRow i32)
    (local $a v128) (local $d0 v128) (local $d1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $xStep (i32.shl (i32.mul (local.get $sw) (local.get $cin)) (i32.const 2)))
    (local.set $dyStep (i32.shl (local.get $cout) (i32.const 2)))
    (local.set $dwRow (local.get $dyStep))
    (local.set $kh (i32.const 0))
    (loop $khLoop
      (local.set $kw (i32.const 0))
      (loop $kwLoop
        ;; Output columns whose input column ow*sw + kw - pl lies inside [0, W).
        (local.set $t (i32.sub (local.get $pl) (local.get $kw)))
        (local.set $owLo
          (select
            (i32.div_u (i32.sub (i32.add (local.get $t) (local.get $sw)) (i32.const 1)) (local.get $sw))
            (i32.const 0)
            (i32.gt_s (local.get $t) (i32.const 0))))
        (local.set $t (i32.add (i32.sub (local.get $W) (i32.const 1)) (i32.sub (local.get $pl) (local.get $kw))))
        (local.set $owHi (i32.const 0))
        (if (i32.ge_s (local.get $t) (i32.const 0))
          (then
            (local.set $owHi (i32.add (i32.div_u (local.get $t) (local.get $sw)) (i32.const 1)))
            (if (i32.gt_s (local.get $owHi) (local.get $OW)) (then (local.set $owHi (local.get $OW))))))
        (if (i32.lt_s (local.get $owLo) (local.get $owHi))
          (then
            (local.set $ci (local.get $ci0))
            (loop $ciLoop
              (local.set $co (local.get $co0))
              (loop $coLoop
                (local.set $dwp
                  (i32.add (local.get $dw)
                    (i32.shl
                      (i32.add
                        (i32.mul
                          (i32.add
                            (i32.mul
                              (i32.add (i32.mul (local.get $kh) (local.get $KW)) (local.get $kw))
                              (local.get $cin))
                            (local.get $ci))
                          (local.get $cout))
                        (local.get $co))
                      (i32.const 2))))
                (local.set $t (local.get $dwp))
                (local.set $c00 (v128.load (local.get $t)))
                (local.set $c01 (v128.load offset=16 (local.get $t)))
                (local.set $t (i32.add (local.get $t) (local.get $dwRow)))
                (local.set $c10 (v128.load (local.get $t)))
                (local.set $c11 (v128.load offset=16 (local.get $t)))
                (local.set $t (i32.add (local.get $t) (local.get $dwRow)))
                (local.set $c20 (v128.load (local.get $t)))
                (local.set $c21 (v128.load offset=16 (local.get $t)))
                (local.set $t (i32.add (local.get $t) (local.get $dwRow)))
                (local.set $c30 (v128.load (local.get $t)))
                (local.set $c31 (v128.load offset=16 (local.get $t)))
                (local.set $r (local.get $r0))
                ;; Image n and output row oh of row r, stepped without a division per row.
                (local.set $n (i32.div_u (local.get $r0) (local.get $OH)))
                (local.set $oh (i32.sub (local.get $r0) (i32.mul (local.get $n) (local.get $OH))))
                (loop $rLoop
                  (block $skipRow
                    (local.set $ih (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $sh)) (local.get $kh)) (local.get $pt)))
                    ;; Unsigned: a negative ih is out of range too.
                    (br_if $skipRow (i32.ge_u (local.get $ih) (local.get $H)))
                    (local.set $xp
                      (i32.add (local.get $x)
                        (i32.shl
                          (i32.add
                            (i32.mul
                              (i32.add
                                (i32.mul (i32.add (i32.mul (local.get $n) (local.get $H)) (local.get $ih)) (local.get $W))
                                (i32.sub (i32.add (i32.mul (local.get $owLo) (local.get $sw)) (local.get $kw)) (local.get $pl)))
                              (local.get $cin))
                            (local.get $ci))
                          (i32.const 2))))
                    (local.set $dyp
                      (i32.add (local.get $dy)
                        (i32.shl
                          (i32.add
                            (i32.mul
                              (i32.add (i32.mul (local.get $r) (local.get $OW)) (local.get $owLo))
                              (local.get $cout))
                            (local.get $co))
                          (i32.const 2))))
                    (local.set $cnt (i32.sub (local.get $owHi) (local.get $owLo)))
                    (loop $px
                      (local.set $d0 (v128.load (local.get $dyp)))
                      (local.set $d1 (v128.load offset=16 (local.get $dyp)))
                      (local.set $a (v128.load32_splat (local.get $xp)))
                      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $a) (local.get $d0))))
                      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $a) (local.get $d1))))
                      (local.set $a (v128.load32_splat offset=4 (local.get $xp)))
                      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $a) (local.get $d0))))
                      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $a) (local.get $d1))))
                      (local.set $a (v128.load32_splat offset=8 (local.get $xp)))
                      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $a) (local.get $d0))))
                      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $a) (local.get $d1))))
                      (local.set $a (v128.load32_splat offset=12 (local.get $xp)))
                      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $a) (local.get $d0))))
                      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $a) (local.get $d1))))
                      (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                      (local.set $dyp (i32.add (local.get $dyp) (local.get $dyStep)))
                      (local.set $cnt (i32.sub (local.get $cnt) (i32.const 1)))
                      (br_if $px (local.get $cnt))))
                  (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
                  (if (i32.eq (local.get $oh) (local.get $OH))
                    (then (local.set $oh (i32.const 0)) (local.set $n (i32.add (local.get $n) (i32.const 1)))))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br_if $rLoop (i32.lt_u (local.get $r) (local.get $r1))))
                (local.set $t (local.get $dwp))
                (v128.store (local.get $t) (local.get $c00))
                (v128.store offset=16 (local.get $t) (local.get $c01))
                (local.set $t (i32.add (local.get $t) (local.get $dwRow)))
                (v128.store (local.get $t) (local.get $c10))
                (v128.store offset=16 (local.get $t) (local.get $c11))
                (local.set $t (i32.add (local.get $t) (local.get $dwRow)))
                (v128.store (local.get $t) (local.get $c20))
                (v128.store offset=16 (local.get $t) (local.get $c21))
                (local.set $t (i32.add (local.get $t) (local.get $dwRow)))
                (v128.store (local.get $t) (local.get $c30))
                (v128.store offset=16 (local.get $t) (local.get $c31))
                (local.set $co (i32.add (local.get $co) (i32.const 8)))
                (br_if $coLoop (i32.lt_u (local.get $co) (local.get $co1))))
              (local.set $ci (i32.add (local.get $ci) (i32.const 4)))
              (br_if $ciLoop (i32.lt_u (local.get $ci) (local.get $ci1))))))
        (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
        (br_if $kwLoop (i32.lt_u (local.get $kw) (local.get $KW))))
      (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
      (br_if $khLoop (i32.lt_u (local.get $kh) (local.get $KH)))))

  ;; Batch-norm statistics and gradient sums, per channel over `rows` rows of C channels
  ;; (C a multiple of 4). Each block of 64 rows sums in float32 registers, then adds into
  ;; float64 totals at $acc (2·C doubles: first Σa, then Σa·b), so long reductions keep
  ;; float64 accuracy at float32 speed.
  ;;   bn_stats:      a = b = x − x[row 0]  (shifted data: Σa and Σa² give a stable variance)
  ;;   bn_grad_sums:  a = dy, b = x − mean
  (func $sums (param $p i32) (param $q i32) (param $rows i32) (param $C i32)
    (param $shift i32) (param $acc i32) (param $square i32)
    (local $rb i32) (local $rEnd i32) (local $c i32) (local $r i32) (local $pp i32) (local $qq i32)
    (local $row i32) (local $t i32) (local $sh v128) (local $a v128) (local $b v128)
    (local $s1 v128) (local $s2 v128)
    (local.set $row (i32.shl (local.get $C) (i32.const 2)))
    (local.set $rb (i32.const 0))
    (block $done
      (loop $rbLoop
        (br_if $done (i32.ge_u (local.get $rb) (local.get $rows)))
        (local.set $rEnd (i32.add (local.get $rb) (i32.const 64)))
        (if (i32.gt_u (local.get $rEnd) (local.get $rows)) (then (local.set $rEnd (local.get $rows))))
        (local.set $c (i32.const 0))
        (loop $cLoop
          (local.set $sh (v128.load (i32.add (local.get $shift) (i32.shl (local.get $c) (i32.const 2)))))
          (local.set $s1 (v128.const f32x4 0 0 0 0))
          (local.set $s2 (v128.const f32x4 0 0 0 0))
          (local.set $t (i32.shl (i32.add (i32.mul (local.get $rb) (local.get $C)) (local.get $c)) (i32.const 2)))
          (local.set $pp (i32.add (local.get $p) (local.get $t)))
          (local.set $qq (i32.add (local.get $q) (local.get $t)))
          (local.set $r (local.get $rb))
          (loop $rLoop
            (local.set $b (f32x4.sub (v128.load (local.get $qq)) (local.get $sh)))
            (local.set $a (local.get $b))
            (if (i32.eqz (local.get $square)) (then (local.set $a (v128.load (local.get $pp)))))
            (local.set $s1 (f32x4.add (local.get $s1) (local.get $a)))
            (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $a) (local.get $b))))
            (local.set $pp (i32.add (local.get $pp) (local.get $row)))
            (local.set $qq (i32.add (local.get $qq) (local.get $row)))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br_if $rLoop (i32.lt_u (local.get $r) (local.get $rEnd))))
          ;; Σa → acc[c..c+3], Σa·b → acc[C+c..C+c+3], as doubles.
          (local.set $t (i32.add (local.get $acc) (i32.shl (local.get $c) (i32.const 3))))
          (call $addF64 (local.get $t) (local.get $s1))
          (call $addF64 (i32.add (local.get $t) (i32.shl (local.get $C) (i32.const 3))) (local.get $s2))
          (local.set $c (i32.add (local.get $c) (i32.const 4)))
          (br_if $cLoop (i32.lt_u (local.get $c) (local.get $C))))
        (local.set $rb (local.get $rEnd))
        (br $rbLoop))))

  ;; Four float32 lanes added into four doubles at $p.
  (func $addF64 (param $p i32) (param $v v128)
    (v128.store (local.get $p)
      (f64x2.add (v128.load (local.get $p)) (f64x2.promote_low_f32x4 (local.get $v))))
    (v128.store offset=16 (local.get $p)
      (f64x2.add (v128.load offset=16 (local.get $p))
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))

  (func (export "bn_stats") (param $x i32) (param $rows i32) (param $C i32) (param $acc i32)
    (call $sums (local.get $x) (local.get $x) (local.get $rows) (local.get $C) (local.get $x) (local.get $acc) (i32.const 1)))

  (func (export "bn_grad_sums") (param $dy i32) (param $x i32) (param $rows i32) (param $C i32)
    (param $mean i32) (param $acc i32)
    (call $sums (local.get $dy) (local.get $x) (local.get $rows) (local.get $C) (local.get $mean) (local.get $acc) (i32.const 0)))

  ;; out = (a − s)·k + b·m + e per channel (s, k, m, e: C floats; C a multiple of 4). With
  ;; $b = 0 the b·m term is skipped: (x − μ)·γ/σ + β is batch norm's forward; the full form
  ;; its dx. Centring before scaling keeps float32 accuracy when |μ| ≫ σ.
  (func (export "channel_affine") (param $a i32) (param $b i32) (param $out i32) (param $rows i32)
    (param $C i32) (param $s i32) (param $k i32) (param $m i32) (param $e i32)
    (local $end i32) (local $c i32) (local $row i32) (local $v v128)
    (local.set $row (i32.shl (local.get $C) (i32.const 2)))
    (local.set $end (i32.add (local.get $out) (i32.mul (local.get $rows) (local.get $row))))
    (if (i32.ge_u (local.get $out) (local.get $end)) (then (return)))
    (loop $rLoop
      (local.set $c (i32.const 0))
      (loop $cLoop
        (local.set $v
          (f32x4.add
            (f32x4.mul
              (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $c))) (v128.load (i32.add (local.get $s) (local.get $c))))
              (v128.load (i32.add (local.get $k) (local.get $c))))
            (v128.load (i32.add (local.get $e) (local.get $c)))))
        (if (local.get $b)
          (then
            (local.set $v
              (f32x4.add (local.get $v)
                (f32x4.mul (v128.load (i32.add (local.get $b) (local.get $c))) (v128.load (i32.add (local.get $m) (local.get $c))))))))
        (v128.store (i32.add (local.get $out) (local.get $c)) (local.get $v))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br_if $cLoop (i32.lt_u (local.get $c) (local.get $row))))
      (local.set $a (i32.add (local.get $a) (local.get $row)))
      (if (local.get $b) (then (local.set $b (i32.add (local.get $b) (local.get $row)))))
      (local.set $out (i32.add (local.get $out) (local.get $row)))
      (br_if $rLoop (i32.lt_u (local.get $out) (local.get $end)))))

  ;; dx = x > 0 ? dy : 0 for n4 groups of four floats (ReLU's gradient in one pass).
  (func (export "relu_grad") (param $dy i32) (param $x i32) (param $dx i32) (param $n4 i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dx) (i32.shl (local.get $n4) (i32.const 4))))
    (if (i32.ge_u (local.get $dx) (local.get $end)) (then (return)))
    (loop $l
      (v128.store (local.get $dx)
        (v128.and (v128.load (local.get $dy))
          (f32x4.gt (v128.load (local.get $x)) (v128.const f32x4 0 0 0 0))))
      (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $dx (i32.add (local.get $dx) (i32.const 16)))
      (br_if $l (i32.lt_u (local.get $dx) (local.get $end)))))

  ;; Max-pool gradient, NHWC, C a multiple of 4; dx must be zeroed. For every output pixel
  ;; and 4 channels, the first window position (row-major) holding the strict maximum of x
  ;; gets dy added, as tfjs's reference does; padding is never the maximum and a window of
  ;; only −∞ or NaN passes no gradient.
  (func (export "max_pool_grad")
    (param $x i32) (param $dy i32) (param $dx i32) (param $N i32) (param $H i32) (param $W i32) (param $C i32)
    (param $OH i32) (param $OW i32) (param $KH i32) (param $KW i32) (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $n i32) (local $oh i32) (local $ow i32) (local $cb i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $iw i32)
    (local $pix i32) (local $dyp i32) (local $row i32) (local $p i32) (local $addr i32)
    (local $best v128) (local $pos v128) (local $v v128) (local $m v128) (local $d v128)
    (local.set $row (i32.shl (local.get $C) (i32.const 2)))
    (local.set $dyp (local.get $dy))
    (if (i32.eqz (i32.mul (i32.mul (local.get $N) (local.get $OH)) (i32.mul (local.get $OW) (local.get $C)))) (then (return)))
    (local.set $n (i32.const 0))
    (loop $nLoop
      (local.set $oh (i32.const 0))
      (loop $ohLoop
        (local.set $ow (i32.const 0))
        (loop $owLoop
          (local.set $cb (i32.const 0))
          (loop $cLoop
            (local.set $best (v128.const f32x4 -inf -inf -inf -inf))
            (local.set $pos (v128.const i32x4 -1 -1 -1 -1))
            (local.set $kh (i32.const 0))
            (loop $khLoop
              (local.set $ih (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $sh)) (local.get $kh)) (local.get $pt)))
              (if (i32.lt_u (local.get $ih) (local.get $H))
                (then
                  (local.set $kw (i32.const 0))
                  (loop $kwLoop
                    (local.set $iw (i32.sub (i32.add (i32.mul (local.get $ow) (local.get $sw)) (local.get $kw)) (local.get $pl)))
                    (if (i32.lt_u (local.get $iw) (local.get $W))
                      (then
                        (local.set $pix
                          (i32.mul
                            (i32.add (i32.mul (i32.add (i32.mul (local.get $n) (local.get $H)) (local.get $ih)) (local.get $W)) (local.get $iw))
                            (local.get $row)))
                        (local.set $v (v128.load (i32.add (i32.add (local.get $x) (local.get $pix)) (local.get $cb))))
                        (local.set $m (f32x4.gt (local.get $v) (local.get $best)))
                        (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $m)))
                        (local.set $pos (v128.bitselect (i32x4.splat (local.get $pix)) (local.get $pos) (local.get $m)))))
                    (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                    (br_if $kwLoop (i32.lt_u (local.get $kw) (local.get $KW))))))
              (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
              (br_if $khLoop (i32.lt_u (local.get $kh) (local.get $KH))))
            (local.set $d (v128.load (local.get $dyp)))
              (local.set $p (i32x4.extract_lane 0 (local.get $pos)))
              (if (i32.ne (local.get $p) (i32.const -1))
                (then
                  (local.set $addr (i32.add (i32.add (local.get $dx) (local.get $p)) (i32.add (local.get $cb) (i32.const 0))))
                  (f32.store (local.get $addr) (f32.add (f32.load (local.get $addr)) (f32x4.extract_lane 0 (local.get $d))))))
              (local.set $p (i32x4.extract_lane 1 (local.get $pos)))
              (if (i32.ne (local.get $p) (i32.const -1))
                (then
                  (local.set $addr (i32.add (i32.add (local.get $dx) (local.get $p)) (i32.add (local.get $cb) (i32.const 4))))
                  (f32.store (local.get $addr) (f32.add (f32.load (local.get $addr)) (f32x4.extract_lane 1 (local.get $d))))))
              (local.set $p (i32x4.extract_lane 2 (local.get $pos)))
              (if (i32.ne (local.get $p) (i32.const -1))
                (then
                  (local.set $addr (i32.add (i32.add (local.get $dx) (local.get $p)) (i32.add (local.get $cb) (i32.const 8))))
                  (f32.store (local.get $addr) (f32.add (f32.load (local.get $addr)) (f32x4.extract_lane 2 (local.get $d))))))
              (local.set $p (i32x4.extract_lane 3 (local.get $pos)))
              (if (i32.ne (local.get $p) (i32.const -1))
                (then
                  (local.set $addr (i32.add (i32.add (local.get $dx) (local.get $p)) (i32.add (local.get $cb) (i32.const 12))))
                  (f32.store (local.get $addr) (f32.add (f32.load (local.get $addr)) (f32x4.extract_lane 3 (local.get $d))))))
            (local.set $dyp (i32.add (local.get $dyp) (i32.const 16)))
            (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
            (br_if $cLoop (i32.lt_u (local.get $cb) (local.get $row))))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br_if $owLoop (i32.lt_u (local.get $ow) (local.get $OW))))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br_if $ohLoop (i32.lt_u (local.get $oh) (local.get $OH))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $nLoop (i32.lt_u (local.get $n) (local.get $N)))))
)
