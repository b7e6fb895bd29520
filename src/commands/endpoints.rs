//! `hactl endpoints FILE`: what a pipeline needs after `up`, from the inventory alone (no host
//! is contacted): the AMQP URL through the VIP (the seed's address without a load balancer),
//! the management URL and the node list, as shell `export` lines or JSON. The password is in
//! the URL only when asked for, read from its secret.

use crate::cli::EndpointsArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::inventory::Inventory;
use crate::ssh::quote;
use crate::steps::management::percent_encode as encode;
use serde::Serialize;

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

#[derive(Serialize)]
struct Endpoints {
    amqp_url: String,
    management_url: String,
    host: String,
    user: Option<String>,
    nodes: Vec<String>,
}

fn endpoints(inv: &Inventory, user: Option<&str>, password: Option<&str>) -> Endpoints {
    let (address, amqp_port, management_port) = match &inv.loadbalancer {
        Some(lb) => (
            lb.vip.split('/').next().unwrap_or(&lb.vip).to_string(),
            lb.amqp_port,
            lb.management_port,
        ),
        None => (
            inv.node(&inv.rabbitmq.seed)
                .map(|n| n.address.clone())
                .unwrap_or_default(),
            inv.rabbitmq.amqp_port,
            inv.rabbitmq.management_port,
        ),
    };
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address
    };
    let credentials = match (user, password) {
        (Some(u), Some(p)) => format!("{}:{}@", encode(u), encode(p)),
        (Some(u), None) => format!("{}@", encode(u)),
        _ => String::new(),
    };
    Endpoints {
        // `/%2F`: the default vhost `/` (an empty path would name the vhost "").
        amqp_url: format!("amqp://{credentials}{host}:{amqp_port}/%2F"),
        management_url: format!("http://{host}:{management_port}/"),
        host,
        user: user.map(str::to_string),
        nodes: inv.rabbitmq_nodes().map(|n| n.name.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn userinfo_is_percent_encoded() {
        assert_eq!(encode("p@ss:w/rd 1%"), "p%40ss%3Aw%2Frd%201%25");
        assert_eq!(encode("plain-Pass_1.~"), "plain-Pass_1.~");
    }
}
