//! The rules of how RabbitMQ is installed: `rabbitmq.version` (the exact Debian version,
//! held) and `rabbitmq.apt_source` (RabbitMQ's own repository, which needs the pin).

use super::Validator;
use crate::inventory::located::fp;
use crate::inventory::{Inventory, PINNED_PACKAGE, names, signing_key};

impl Validator<'_> {
    pub(super) fn apt(&mut self, inv: &Inventory) {
        let rmq = &inv.rabbitmq;
        let base = fp("rabbitmq");
        if let Some(version) = &rmq.version {
            self.check(&base.k("version"), names::debian_version(version));
            if !rmq.packages.iter().any(|p| p == PINNED_PACKAGE) {
                self.error(
                    &base.k("version"),
                    format!(
                        "the version pins {PINNED_PACKAGE}, which rabbitmq.packages does not \
                         list; add it there"
                    ),
                );
            }
        }
        let Some(src) = &rmq.apt_source else {
            return;
        };
        let sp = base.k("apt_source");
        if rmq.version.is_none() {
            self.error(
                &sp,
                "an apt source needs rabbitmq.version: without a pin, what gets installed \
                 depends on what the repository publishes next, and nodes installed at \
                 different times could run different RabbitMQ versions",
            );
        }
        self.check(&sp.k("url"), names::apt_url(&src.url));
        self.check(&sp.k("suite"), names::apt_word("suite", &src.suite));
        if src.components.is_empty() {
            self.error(
                &sp.k("components"),
                "at least one component is needed, e.g. [main]",
            );
        }
        for (i, c) in src.components.iter().enumerate() {
            let cp = sp.k("components").i(i);
            self.check(&cp, names::apt_word("component", c));
            if src.components[..i].contains(c) {
                self.error(&cp, format!("component {c:?} is listed twice"));
            }
        }
        let kp = sp.k("signing_key");
        match names::path(&src.signing_key.to_string_lossy()) {
            Err(e) => self.error(&kp, e),
            Ok(()) => {
                let key = signing_key::read_armored(self.base_dir, &src.signing_key);
                self.check(&kp, key.map(drop));
            }
        }
    }
}
