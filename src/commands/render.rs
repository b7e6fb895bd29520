//! `hactl render`: placeholder replaced by the rendering work.

use crate::cli::RenderArgs;

pub fn run(_args: &RenderArgs) -> anyhow::Result<()> {
    anyhow::bail!("render is not built yet")
}
