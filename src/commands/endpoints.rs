//! `hactl endpoints FILE`: what a pipeline needs after `up`, from the inventory alone (no host
//! is contacted): the AMQP URL through the VIP (the seed's address without a load balancer),
//! the management URL and the node list, as shell `export` lines or JSON. The password is in
//! the URL only when asked for, read from its secret.

use crate::cli::EndpointsArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::inventory::endpoints::endpoints;
use crate::ssh::quote;

pub fn run(args: &EndpointsArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let loaded = super::load_inventory(&args.inventory.path())?;
    let inv = &loaded.inventory;
    let user = match &args.user {
        Some(name) => inv.rabbitmq.users.iter().find(|u| &u.name == name),
        None => inv.rabbitmq.users.first(),
    };
    let user = match (user, &args.user) {
        (Some(u), _) => Some(u),
        (None, Some(name)) => {
            return Err(InvalidInput(format!("no user {name} in rabbitmq.users")).into());
        }
        (None, None) => None,
    };
    let password = match (args.with_password, user) {
        (true, Some(u)) => Some(
            u.password
                .resolve(&loaded.base_dir)
                .map_err(|e| InvalidInput(format!("rabbitmq.users {}: password: {e}", u.name)))?,
        ),
        (true, None) => {
            return Err(InvalidInput("--with-password: rabbitmq.users is empty".into()).into());
        }
        (false, _) => None,
    };
    let e = endpoints(
        inv,
        user.map(|u| u.name.as_str()),
        password.as_ref().map(|p| p.expose()),
    );
    if args.json {
        out.data(&e)?;
    } else {
        println!("export HACTL_AMQP_URL={}", quote(&e.amqp_url));
        println!("export HACTL_MANAGEMENT_URL={}", quote(&e.management_url));
        println!("export HACTL_AMQP_HOST={}", quote(&e.host));
        println!("export HACTL_NODES={}", quote(&e.nodes.join(" ")));
    }
    Ok(())
}
