//! HTML building blocks: escaping, the page shell (CSS and the few lines of JavaScript), residue
//! tracks and the activation histogram as inline SVG.

use std::fmt::Write;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query or path component.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A number for a table cell: 3 significant digits, scientific below 1e-3.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{:.3}", v)
    }
}

/// Optional number.
pub fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_else(|| "–".into())
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#243b53;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{margin-left:auto}
main{padding:12px 16px;max-width:1200px}
table{border-collapse:collapse;margin:8px 0}
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.chip{display:inline-block;background:#e3f2fd;border-radius:10px;padding:1px 8px;margin:2px}
.track{font:12px/1.6 ui-monospace,monospace;word-break:break-all;margin:2px 0 10px}
.track span.r{padding:0 .5px}
.track span.max{outline:2px solid #c00;font-weight:700}
.muted{color:#777}
.desc{background:#fffbe6;padding:6px 10px;border-left:3px solid #f0b400}
#readout{position:fixed;bottom:8px;right:8px;background:#243b53;color:#fff;padding:2px 8px;border-radius:4px;display:none}
"#;

const SCRIPT: &str = r#"
document.addEventListener('mouseover',function(e){var t=e.target,o=document.getElementById('readout');
if(!o)return;if(t.dataset&&t.dataset.a!==undefined){o.textContent=t.dataset.p+': '+t.dataset.a;o.style.display='block'}else{o.style.display='none'}});
"#;

/// The page shell.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{t} · plmscope</title>\
         <meta name=viewport content='width=device-width'><style>{STYLE}</style></head><body>\
         <header><a href='/'>plmscope atlas</a><a href='/compare'>compare</a><a href='/flow'>flow</a><a href='/sequence'>your sequence</a>\
         <form action='/search'><input name=q placeholder='GO term, Pfam, accession, text' size=32 id=q>\
         <button>search</button></form></header><main>{body}</main><div id=readout></div>\
         <script>{SCRIPT}</script></body></html>",
        t = esc(title)
    )
}

/// One residue track: each residue shaded by its activation over `scale`, the maximum outlined
/// (`class=max`). Without a sequence, residues are drawn as `·`.
pub fn track(sequence: Option<&str>, values: &[f32], scale: f32) -> String {
    let residues: Vec<char> = sequence.map(|s| s.chars().collect()).unwrap_or_default();
    let (argmax, max) =
        values
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
    let scale = if scale > 0.0 { scale } else { max.max(1e-12) };
    let mut out = String::with_capacity(values.len() * 64);
    let _ = write!(out, "<div class=track data-max-position='{}'>", argmax + 1);
    for (i, &v) in values.iter().enumerate() {
        let alpha = (v / scale).clamp(0.0, 1.0);
        let c = residues.get(i).copied().unwrap_or('·');
        let class = if i == argmax && max > 0.0 {
            "r max"
        } else {
            "r"
        };
        let _ = write!(
            out,
            "<span class='{class}' style='background:rgba(230,80,0,{alpha:.2})' data-p='{}{}' data-a='{:.3}'>{}</span>",
            esc(&c.to_string()),
            i + 1,
            v,
            esc(&c.to_string())
        );
    }
    out.push_str("</div>");
    out
}

/// A histogram of `values` as an inline SVG bar chart (`bins` bars over 0..max).
pub fn histogram(values: &[f64], bins: usize, caption: &str) -> String {
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let mut counts = vec![0usize; bins];
    for &v in values {
        let b = if max > 0.0 {
            ((v / max) * bins as f64) as usize
        } else {
            0
        };
        counts[b.min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h) = (480.0, 120.0);
    let bw = w / bins as f64;
    let mut svg = format!(
        "<figure><svg id=histogram width={w} height={} viewBox='0 0 {w} {}' role=img>",
        h + 20.0,
        h + 20.0
    );
    for (i, &c) in counts.iter().enumerate() {
        let bh = h * c as f64 / top as f64;
        let _ = write!(
            svg,
            "<rect x={:.1} y={:.1} width={:.1} height={:.1} fill='#486581'><title>{}–{}: {c}</title></rect>",
            i as f64 * bw,
            h - bh,
            (bw - 1.0).max(0.5),
            bh,
            num(max * i as f64 / bins as f64),
            num(max * (i + 1) as f64 / bins as f64)
        );
    }
    let _ = write!(
        svg,
        "<text x=0 y={} font-size=11>0</text><text x={w} y={} font-size=11 text-anchor=end>{}</text></svg>\
         <figcaption class=muted>{}</figcaption></figure>",
        h + 14.0,
        h + 14.0,
        num(max),
        esc(caption)
    );
    svg
}
