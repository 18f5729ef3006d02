/** A small SVG line chart: IOVA cost against live allocations (log scale), for the README. */
export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 560;
  const H = 320;
  const L = 64;
  const R = 16;
  const T = 36;
  const B = 48;
  const xs = series.flatMap((s) => s.points.map((p) => Math.log10(p.x)));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const x0 = Math.floor(Math.min(...xs));
  const x1 = Math.ceil(Math.max(...xs));
  const y1 = niceCeil(Math.max(...ys) * 1.1);
  const px = (x: number) => L + ((Math.log10(x) - x0) / Math.max(1e-9, x1 - x0)) * (W - L - R);
  const py = (y: number) => H - B - (y / y1) * (H - T - B);
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  for (let e = x0; e <= x1; e++) {
    const x = px(10 ** e);
    out.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${H - B + 16}" text-anchor="middle">10^${e}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (y1 * i) / 4;
    const y = py(v);
    out.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${L - 6}" y="${y + 4}" text-anchor="end">${+v.toFixed(1)}</text>`);
  }
  out.push(`<text x="${W / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of s.points) out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${s.color}"/>`);
    out.push(`<rect x="${L + 10}" y="${T + 6 + i * 18}" width="12" height="3" fill="${s.color}"/>`);
    out.push(`<text x="${L + 28}" y="${T + 11 + i * 18}">${esc(s.name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}
