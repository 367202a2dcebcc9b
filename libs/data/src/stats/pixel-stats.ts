import { symmetricEigen3 } from './eigen';

/** Running RGB mean, std and covariance over pixels in [0, 1] (sums in float64). */
export class PixelStats {
  private n = 0;
  private s = [0, 0, 0];
  private ss = [0, 0, 0, 0, 0, 0]; // rr rg rb gg gb bb

  get count(): number {
    return this.n;
  }

  /** Adds interleaved 8-bit pixels with `channels` channels (1 = grey, 3 = RGB, 4 = RGBA), every `step`-th pixel. */
  add(px: Uint8Array, channels: number, step = 1): void {
    for (let i = 0; i < px.length; i += channels * step) {
      const r = px[i] / 255;
      const g = channels >= 3 ? px[i + 1] / 255 : r;
      const b = channels >= 3 ? px[i + 2] / 255 : r;
      this.n++;
      this.s[0] += r;
      this.s[1] += g;
      this.s[2] += b;
      this.ss[0] += r * r;
      this.ss[1] += r * g;
      this.ss[2] += r * b;
      this.ss[3] += g * g;
      this.ss[4] += g * b;
      this.ss[5] += b * b;
    }
  }

  mean(): [number, number, number] {
    const n = Math.max(1, this.n);
    return [this.s[0] / n, this.s[1] / n, this.s[2] / n];
  }

  covariance(): number[][] {
    const n = Math.max(1, this.n);
    const m = this.mean();
    const c = (k: number, i: number, j: number) => this.ss[k] / n - m[i] * m[j];
    const rr = c(0, 0, 0), rg = c(1, 0, 1), rb = c(2, 0, 2), gg = c(3, 1, 1), gb = c(4, 1, 2), bb = c(5, 2, 2);
    return [
      [rr, rg, rb],
      [rg, gg, gb],
      [rb, gb, bb],
    ];
  }

  /** Per-channel std, floored so constant channels still normalise safely. */
  std(): [number, number, number] {
    const c = this.covariance();
    return [0, 1, 2].map((i) => Math.max(1e-3, Math.sqrt(Math.max(0, c[i][i])))) as [number, number, number];
  }

  pca(): { eigval: number[]; eigvec: number[][] } {
    const e = symmetricEigen3(this.covariance());
    return { eigval: e.eigval.map((x) => Math.max(0, x)), eigvec: e.eigvec };
  }
}
