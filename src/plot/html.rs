//! The HTML page of a bench report: the plot and a table of every figure, one file that
//! opens in any browser next to the SVG.

use crate::bench::doc::Saved;
use crate::bench::size_label;
use std::fmt::Write;
use std::path::Path;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page: `title`, the SVG at `svg` (linked relative to `page` when in the same
/// directory), and one table row per label and point.
pub fn page(title: &str, svg: &Path, page: &Path, docs: &[(String, Saved)]) -> String {
    let same_dir = svg.parent().map(|d| d.canonicalize().ok()) == page.parent().map(|d| d.canonicalize().ok());
    let src = match (same_dir, svg.file_name()) {
        (true, Some(name)) => name.to_string_lossy().into_owned(),
        _ => svg.display().to_string(),
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} \
         td,th{{border:1px solid #bbb;padding:.25em .7em;text-align:right}} th{{background:#eee}} \
         td:first-child{{text-align:left}}</style></head><body>\n<h1>{t}</h1>\n\
         <p><img src=\"{src}\" alt=\"IOPS and p99 latency against queue depth\" style=\"max-width:100%\"></p>\n\
         <table>\n<tr><th>daemon</th><th>workload</th><th>bs</th><th>QD</th><th>IOPS</th><th>MiB/s</th>\
         <th>p50 us</th><th>p99 us</th><th>p99.9 us</th><th>runs</th></tr>\n",
        t = esc(title),
        src = esc(&src)
    );
    for (label, doc) in docs {
        for p in &doc.points {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{:.1}</td>\
                 <td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
                esc(label),
                esc(&p.workload),
                size_label(p.bs),
                p.iodepth,
                p.iops,
                p.mib_s,
                p.lat_us.p50,
                p.lat_us.p99,
                p.lat_us.p999,
                p.repetitions
            );
        }
    }
    h.push_str("</table>\n<p>Figures from <code>dpfs bench --json</code>: the simulated guest of dpfs-sim against each daemon's vhost-user socket; wall-clock measurements, so compare runs made on the same machine.</p>\n</body></html>\n");
    h
}
