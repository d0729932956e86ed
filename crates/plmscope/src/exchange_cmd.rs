//! `plmscope export` and `plmscope import`: arguments → [`plmscope_exchange`], which does the
//! work.

use anyhow::Result;
use plmscope_exchange::{export, import, ExportRequest, Exported, ImportRequest};

pub fn export_cmd(req: ExportRequest) -> Result<()> {
    let (what, written) = export(&req)?;
    if let Exported::Set(_) = what {
        eprintln!("{}: {}", req.input.display(), what.name());
    }
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

pub fn import_cmd(req: ImportRequest) -> Result<()> {
    let summary = import(&req)?;
    println!(
        "{}: {} proteins, {} rows of width {} (layer {})",
        req.out.display(),
        summary.proteins,
        summary.rows,
        summary.d_model,
        summary.layer
    );
    Ok(())
}
