/**
 * The page of `iommu ui`: one HTML file with the view's script (built from web/app.ts into dist/web/app.js)
 * and the data inlined, so the same bytes work served from 127.0.0.1 and opened from file://.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { IommuError, fsError } from "../core/errors.js";

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em;color:#111}section{border-top:1px solid #ccc;padding:.5em 0}
.cols{display:flex;gap:2em;flex-wrap:wrap}ul[role=tree],ul[role=group]{list-style:none;padding-left:1.2em}
button.dev{border:1px solid #888;border-radius:4px;margin:2px;padding:2px 6px;cursor:pointer;font:inherit}
button.dev[aria-pressed=true]{outline:3px solid #036}.groups li{margin:3px 0;padding:3px 6px;border-radius:4px}
.why{font-size:12px;color:#333}.step{margin:3px 0}.step.absent{color:#a00}.bits{font:12px monospace;color:#444}
.fault{color:#a00;font-weight:bold}.ok{color:#060;font-weight:bold}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-family:monospace}
.timeline{display:flex;gap:1em}.run{flex:1;border:1px solid #ccc;border-radius:4px;padding:.5em}dl{display:grid;grid-template-columns:auto 1fr;gap:0 1em;font-size:12px}
[role=tablist] button{margin:2px;font:inherit}[role=tab][aria-selected=true]{background:#036;color:#fff}
button.dev.blocked{border:2px solid #a00}button.dev.todo{border:2px dashed #850}.run ul,.run dl{font-size:12px}.findings{list-style:none;padding-left:0}.finding.error{color:#a00}.finding.warning{color:#850}
.finding.passed{color:#333}.absent{font-style:italic}ol.tl{list-style:none;padding-left:0;font-size:12px}.ev{display:flex;gap:.5em;align-items:baseline;margin:1px 0}
.track{position:relative;flex:0 0 80px;height:8px;background:#eee;border-radius:4px}.tick{position:absolute;top:0;width:4px;height:8px;margin-left:-2px;background:#036}
.ev time{font-family:monospace;color:#555;flex:0 0 auto}.ev.blocked{color:#a00}.ev.blocked .tick{background:#a00}.ev.interrupt .tick{background:#080}.ev.step{color:#222}`;

/** The built view script: dist/web/app.js next to dist/ui/ (or the repository's dist when run from src/). */
export function viewScript(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const candidates = [join(here, "..", "web", "app.js"), join(here, "..", "..", "dist", "web", "app.js")];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    throw new IommuError("UI_NOT_BUILT", `the browser view is not built (looked for ${candidates[0] ?? ""})`, { hint: "run 'npm run build'" });
  }
  return readFileSync(found, "utf8");
}

/** JSON safe inside <script>: no "</script>", no "<!--". */
function embedJson(data: unknown): string {
  return JSON.stringify(data, (_k, v: unknown) => (typeof v === "bigint" ? "0x" + v.toString(16) : v)).replace(/</g, "\\u003c");
}

export function renderPage(data: unknown, script: string, title: string): string {
  const safeTitle = title.replace(/[<&>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><link rel="icon" href="data:,">
<title>iommu ui — ${safeTitle}</title><style>${CSS}</style></head>
<body><div id="app">Loading…</div>
<script type="application/json" id="iommu-data">${embedJson(data)}</script>
<script>${script.replace(/<\/script/gi, "<\\/script")}</script>
</body></html>
`;
}

/** Writes DIR/index.html; returns its path. */
export function exportSite(dir: string, html: string): string {
  const path = join(dir, "index.html");
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path, html);
  } catch (e) {
    throw fsError(e, dir, "write");
  }
  return path;
}

/** Serves the page on 127.0.0.1:port (0: any free port). Resolves with the server and its URL. */
export function servePage(html: string, port: number, walk?: (bdf: string, iova: string) => unknown): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    if (req.method === "GET" && u.pathname === "/api/walk" && walk !== undefined) {
      const r = walk(u.searchParams.get("bdf") ?? "", u.searchParams.get("iova") ?? "");
      const body = typeof r === "string" ? { error: r } : r;
      res.writeHead(typeof r === "string" ? 400 : 200, { "content-type": "application/json" }).end(JSON.stringify(body));
      return;
    }
    if (req.method !== "GET" || (req.url !== "/" && req.url !== "/index.html")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e) => reject(new IommuError("UI_PORT", `cannot listen on 127.0.0.1:${port}: ${e.message}`)));
    server.listen(port, "127.0.0.1", () => {
      const a = server.address();
      const p = typeof a === "object" && a !== null ? a.port : port;
      resolve({ server, url: `http://127.0.0.1:${p}/` });
    });
  });
}
