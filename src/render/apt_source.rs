//! The files of `rabbitmq.apt_source` on RabbitMQ hosts: the signing key (armored) and a
//! deb822 source that trusts only that key for that repository.

use super::manifest::{APT_KEYRING, APT_SOURCE, FileKind, RenderedFile};
use crate::inventory::{Loaded, Node, signing_key};
use anyhow::anyhow;

/// The key and the source for `node`; none without an apt source or on a load balancer.
pub fn files(loaded: &Loaded, node: &Node) -> anyhow::Result<Vec<RenderedFile>> {
    let (Some(src), true) = (&loaded.inventory.rabbitmq.apt_source, node.is_rabbitmq()) else {
        return Ok(Vec::new());
    };
    let key = signing_key::read_armored(&loaded.base_dir, &src.signing_key)
        .map_err(|e| anyhow!("rabbitmq.apt_source.signing_key: {e}"))?;
    let source = format!(
        "# Written by hactl (cluster {}): RabbitMQ's apt repository.\n\
         Types: deb\n\
         URIs: {}\n\
         Suites: {}\n\
         Components: {}\n\
         Signed-By: {APT_KEYRING}\n",
        loaded.inventory.cluster.name,
        src.url,
        src.suite,
        src.components.join(" ")
    );
    Ok(vec![file(APT_KEYRING, key), file(APT_SOURCE, source)])
}

fn file(path: &str, content: String) -> RenderedFile {
    RenderedFile {
        path: path.to_string(),
        content,
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
        dir_owner: "root",
        check: &[],
        kind: FileKind::Whole,
        package: None,
    }
}
