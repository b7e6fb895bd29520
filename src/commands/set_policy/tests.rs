//! Requests built from flags, version refusals, the inventory relation and rivals.

use super::execute::rivals;
use super::relation::{relation_to_inventory, same_policy, yaml_snippet};
use super::request::{Request, build_request, check_against_version};
use crate::cli::SetPolicyArgs;
use crate::inventory::{ApplyTo, Inventory, Policy};
use crate::steps::definitions;
use clap::Parser;
use serde_json::json;

fn inventory() -> Inventory {
    let yaml = r#"
cluster: {name: t}
cookie: {value: abc}
rabbitmq:
  seed: node1
  policies:
    - name: ha-all
      pattern: '^ha\.'
      apply_to: queues
      definition: {ha-mode: all, ha-sync-mode: automatic}
nodes:
  - {name: node1, address: 10.0.0.11, roles: [rabbitmq]}
  - {name: node2, address: 10.0.0.12, roles: [rabbitmq]}
  - {name: node3, address: 10.0.0.13, roles: [rabbitmq]}
"#;
    serde_saphyr::from_str(yaml).unwrap()
}

fn args(argv: &[&str]) -> SetPolicyArgs {
    let mut cli =
        crate::cli::Cli::try_parse_from(["hactl", "set-policy"].iter().chain(argv.iter()).copied())
            .unwrap_or_else(|e| panic!("{e}"));
    cli.command.settle().unwrap_or_else(|e| panic!("{e}"));
    match cli.command {
        crate::cli::Command::SetPolicy(a) => a,
        other => panic!("{other:?}"),
    }
}

fn build(argv: &[&str]) -> Result<(Request, Vec<String>), Vec<String>> {
    build_request(&args(argv), &inventory())
}

fn set(argv: &[&str]) -> Policy {
    match build(argv).unwrap_or_else(|e| panic!("{e:?}")).0 {
        Request::Set(p) => p,
        r => panic!("{r:?}"),
    }
}

#[test]
fn presets() {
    let p = set(&["ha-all"]);
    assert_eq!(p.pattern, r"^ha\.");
    assert_eq!(p.apply_to, ApplyTo::Queues);
    assert_eq!(
        definitions::definition_json(&p),
        r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#
    );
    assert!(same_policy(&p, &inventory().rabbitmq.policies[0]));
    let p = set(&["ha-two"]);
    assert_eq!(p.definition["ha-params"], json!(2));
    let p = set(&["ha-nodes", "--nodes", "node1,rabbit@node3"]);
    assert_eq!(
        p.definition["ha-params"],
        json!(["rabbit@node1", "rabbit@node3"])
    );
    let p = set(&["quorum"]);
    assert_eq!(p.apply_to, ApplyTo::QuorumQueues);
    assert_eq!(p.pattern, r"^qq\.");
    assert!(!p.definition.keys().any(|k| k.starts_with("ha-")));
    let p = set(&[
        "ha-all",
        "--vhost",
        "other",
        "--priority",
        "-3",
        "--pattern",
        "^x",
    ]);
    assert_eq!(
        (p.vhost.as_str(), p.priority, p.pattern.as_str()),
        ("other", -3, "^x")
    );
}

#[test]
fn custom_policies() {
    let p = set(&[
        "ttl",
        "--pattern",
        r"^tmp\.",
        "--definition",
        r#"{"message-ttl":60000}"#,
        "--apply-to",
        "queues",
    ]);
    assert_eq!(p.name, "ttl");
    assert_eq!(p.definition["message-ttl"], json!(60000));
    assert_eq!(p.apply_to, ApplyTo::Queues);
    // A custom definition may reuse a preset's name.
    let p = set(&[
        "ha-all",
        "--pattern",
        "^a",
        "--definition",
        r#"{"max-length":5}"#,
    ]);
    assert_eq!(p.definition["max-length"], json!(5));
    match build(&["--remove", "ha-all", "-p", "other"]).unwrap().0 {
        Request::Remove { name, vhost } => {
            assert_eq!((name.as_str(), vhost.as_str()), ("ha-all", "other"))
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn bad_requests_are_refused_with_every_reason() {
    let errs = |argv: &[&str]| {
        build(argv)
            .err()
            .unwrap_or_else(|| panic!("{argv:?} accepted"))
            .join("\n")
    };
    let e = errs(&["x", "--pattern", "^a", "--definition", "{not json"]);
    assert!(e.contains("not valid JSON"), "{e}");
    let e = errs(&["x", "--pattern", "^a", "--definition", "[1]"]);
    assert!(e.contains("JSON object"), "{e}");
    let e = errs(&[
        "x",
        "--pattern",
        "^a",
        "--definition",
        r#"{"ha-mode":"most"}"#,
    ]);
    assert!(e.contains("ha-mode"), "{e}");
    let e = errs(&[
        "x",
        "--pattern",
        "^a",
        "--definition",
        r#"{"mesage-ttl":5}"#,
    ]);
    assert!(e.contains("did you mean `message-ttl`"), "{e}");
    let e = errs(&[
        "x",
        "--pattern",
        "^a",
        "--definition",
        r#"{"ha-mode":"exactly","ha-params":0}"#,
    ]);
    assert!(e.contains("ha-params"), "{e}");
    let e = errs(&[
        "x",
        "--pattern",
        "(unclosed",
        "--definition",
        r#"{"max-length":1}"#,
    ]);
    assert!(e.contains("not a valid regular expression"), "{e}");
    let e = errs(&[
        "x",
        "--pattern",
        "-a",
        "--definition",
        r#"{"max-length":1}"#,
    ]);
    assert!(e.contains("must not start with `-`"), "{e}");
    let e = errs(&[
        "x",
        "--pattern",
        "a\nb",
        "--definition",
        r#"{"max-length":1}"#,
    ]);
    assert!(e.contains("control characters"), "{e}");
    let e = errs(&["x", "--definition", r#"{"max-length":1}"#]);
    assert!(e.contains("--definition needs --pattern"), "{e}");
    let e = errs(&[
        "--pattern",
        "^a",
        "--definition",
        r#"{"max-length":1}"#,
        "--",
        "-bad",
    ]);
    assert!(e.contains("must not start with `-`"), "{e}");
    let e = errs(&["ha-all", "--vhost", "v\u{7}"]);
    assert!(e.contains("control characters"), "{e}");
    let e = errs(&["nope"]);
    assert!(e.contains("not a preset"), "{e}");
    let e = errs(&["ha-nodes"]);
    assert!(e.contains("needs --nodes"), "{e}");
    let e = errs(&["ha-nodes", "--nodes", "node1,node9"]);
    assert!(e.contains("node9"), "{e}");
    let e = errs(&["ha-all", "--nodes", "node1"]);
    assert!(e.contains("only for the ha-nodes"), "{e}");
    let e = errs(&["ha-all", "--apply-to", "queue"]);
    assert!(e.contains("--apply-to"), "{e}");
}

/// RabbitMQ 4.x refuses ha-* (with the quorum alternative); 3.10 refuses apply-to
/// quorum_queues.
#[test]
fn version_logic() {
    let ha = set(&["ha-all"]);
    assert!(check_against_version("3.10.8", &ha).is_ok());
    assert!(check_against_version("3.13.7", &ha).is_ok());
    for v in ["4.0.2", "4.2.0"] {
        let e = check_against_version(v, &ha).unwrap_err();
        assert!(
            e.contains("removed in 4.0") && e.contains("`quorum` preset"),
            "{e}"
        );
    }
    let e =
        check_against_version("4.1.0", &set(&["ha-nodes", "--nodes", "node1,node2"])).unwrap_err();
    assert!(e.contains("ha-mode"), "{e}");
    let q = set(&["quorum"]);
    assert!(check_against_version("4.0.2", &q).is_ok());
    assert!(check_against_version("3.12.0", &q).is_ok());
    assert!(
        check_against_version("3.10.8", &q)
            .unwrap_err()
            .contains("3.12")
    );
    let q = set(&["quorum", "--apply-to", "queues"]);
    assert!(check_against_version("3.10.8", &q).is_ok());
}

#[test]
fn the_inventory_relation_is_said() {
    let inv = inventory();
    let mut w = Vec::new();
    assert_eq!(
        relation_to_inventory(&inv, &Request::Set(set(&["ha-all"])), &mut w).0,
        "same"
    );
    assert!(w.is_empty());
    let r = relation_to_inventory(&inv, &Request::Set(set(&["ha-two"])), &mut w);
    assert_eq!(r.0, "absent");
    assert!(r.1.unwrap().contains("name: \"ha-two\""));
    let custom = set(&[
        "ha-all",
        "--pattern",
        "^a",
        "--definition",
        r#"{"max-length":5}"#,
    ]);
    assert_eq!(
        relation_to_inventory(&inv, &Request::Set(custom), &mut w).0,
        "differs"
    );
    assert!(w[0].contains("next `hactl up` will set it back"), "{w:?}");
    let mut w = Vec::new();
    let rm = Request::Remove {
        name: "ha-all".into(),
        vhost: "/".into(),
    };
    relation_to_inventory(&inv, &rm, &mut w);
    assert!(w[0].contains("will set it again"), "{w:?}");
}

/// The snippet is YAML the inventory loader reads back to the same policy.
#[test]
fn yaml_snippet_round_trips() {
    #[derive(serde::Deserialize)]
    struct Doc {
        rabbitmq: Rmq,
    }
    #[derive(serde::Deserialize)]
    struct Rmq {
        policies: Vec<Policy>,
    }
    for p in [
        set(&["ha-nodes", "--nodes", "node1,node2"]),
        set(&["quorum", "--vhost", "it's \"odd\"", "--priority", "-2"]),
        set(&[
            "x",
            "--pattern",
            r##"^a\.b'"c: #d"##,
            "--definition",
            r#"{"message-ttl":5,"dead-letter-exchange":"dlx: \\ x"}"#,
        ]),
    ] {
        let text = yaml_snippet(&p);
        let doc: Doc = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(same_policy(&doc.rabbitmq.policies[0], &p), "{text}");
    }
}

#[test]
fn rivals_are_found() {
    let p = set(&["ha-two"]);
    let defs = json!({"policies": [
        {"vhost": "/", "name": "ha-all", "pattern": "^ha\\.", "apply-to": "queues", "priority": 0, "definition": {}},
        {"vhost": "/", "name": "hi", "pattern": "^ha\\.", "apply-to": "queues", "priority": 5, "definition": {}},
        {"vhost": "/", "name": "ex", "pattern": "^ha\\.", "apply-to": "exchanges", "priority": 0, "definition": {}},
        {"vhost": "/", "name": "ha-two", "pattern": "^ha\\.", "apply-to": "queues", "priority": 0, "definition": {}},
    ]});
    assert_eq!(rivals(&defs, &p), ["ha-all"]);
}
