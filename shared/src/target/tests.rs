use super::*;

fn tcp(h: &str, p: u16) -> Target {
    Target::Tcp {
        host: h.into(),
        port: p,
    }
}

#[test]
fn tcp_forms() {
    assert_eq!(Target::parse("db:5432"), Ok(tcp("db", 5432)));
    assert_eq!(Target::parse("tcp://db:5432"), Ok(tcp("db", 5432)));
    assert_eq!(Target::parse("[::1]:5432"), Ok(tcp("::1", 5432)));
    assert_eq!(Target::parse("127.0.0.1:1"), Ok(tcp("127.0.0.1", 1)));
}

#[test]
fn http_forms() {
    let Ok(Target::Http(u)) = Target::parse("http://127.0.0.1:8000/health?x=1") else {
        panic!()
    };
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("127.0.0.1", 8000, "/health?x=1")
    );
    let Ok(Target::Http(u)) = Target::parse("http://svc") else {
        panic!()
    };
    assert_eq!(
        (u.port, u.path.as_str(), u.host_header()),
        (80, "/", "svc".to_string())
    );
    let Ok(Target::Http(u)) = Target::parse("http://[::1]:81/") else {
        panic!()
    };
    assert_eq!(u.host_header(), "[::1]:81");
}

#[test]
fn https_forms() {
    let Ok(Target::Http(u)) = Target::parse("HTTPS://svc/health") else {
        panic!()
    };
    assert_eq!(
        (u.tls, u.port, u.path.as_str(), u.host_header(), u.scheme()),
        (true, 443, "/health", "svc".to_string(), "https")
    );
    let Ok(Target::Http(u)) = Target::parse("https://[::1]:8443") else {
        panic!()
    };
    assert_eq!((u.tls, u.host_header()), (true, "[::1]:8443".to_string()));
    let Ok(Target::Http(u)) = Target::parse("http://svc:443/") else {
        panic!()
    };
    assert_eq!((u.tls, u.host_header()), (false, "svc:443".to_string()));
    assert!(Target::parse("https://u:p@svc/")
        .unwrap_err()
        .contains("credentials"));
}

#[test]
fn other_schemes() {
    assert_eq!(
        Target::parse("unix:///run/a.sock"),
        Ok(Target::Unix {
            path: "/run/a.sock".into()
        })
    );
    assert_eq!(
        Target::parse("file:///run/app.ready"),
        Ok(Target::File {
            path: "/run/app.ready".into()
        })
    );
    assert_eq!(
        Target::parse("postgres://app@db/main"),
        Ok(Target::Postgres {
            host: "db".into(),
            port: 5432,
            user: Some("app".into()),
            database: Some("main".into())
        })
    );
    assert_eq!(
        Target::parse("redis://:secret@cache:6380/0"),
        Ok(Target::Redis {
            host: "cache".into(),
            port: 6380,
            user: None,
            password: Some("secret".into()),
            db: Some(0),
        })
    );
}

#[test]
fn credentials_and_databases_are_percent_decoded() {
    assert_eq!(
        Target::parse("redis://app:p%40ss%2Fw%3Ard@r/12"),
        Ok(Target::Redis {
            host: "r".into(),
            port: 6379,
            user: Some("app".into()),
            password: Some("p@ss/w:rd".into()),
            db: Some(12),
        })
    );
    // A lone word is the password, as redis-cli reads it.
    let Ok(Target::Redis {
        user, password, db, ..
    }) = Target::parse("redis://s%25cret@r")
    else {
        panic!()
    };
    assert_eq!((user, password, db), (None, Some("s%cret".into()), None));
    assert_eq!(
        Target::parse("postgres://a%40b:ignored@db:5433/my%2Fdb?sslmode=disable"),
        Ok(Target::Postgres {
            host: "db".into(),
            port: 5433,
            user: Some("a@b".into()),
            database: Some("my/db".into())
        })
    );
}

#[test]
fn bad_credentials_are_usage_errors_without_the_password() {
    for (bad, why) in [
        ("redis://app:p%4@r", "bad percent-encoding in the password"),
        ("redis://app:p%zz@r", "bad percent-encoding in the password"),
        ("redis://a%g1:pw@r", "bad percent-encoding in the user"),
        ("redis://:pw@r/%", "bad percent-encoding in the database"),
        ("redis://:pw@r/x", "is not a number"),
        ("redis://:pw@r/-1", "is not a number"),
        ("redis://app:@r", "needs a password"),
        ("redis://:%ff@r", "not UTF-8"),
        ("postgres://a%@db", "bad percent-encoding in the user"),
        ("postgres://a:pw@db/d%2", "bad percent-encoding in the database"),
        ("postgres://a%00b@db", "NUL"),
    ] {
        let e = Target::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        assert!(e.contains("@"), "{bad}: the target is named: {e}");
        assert!(
            !e.contains("pw") && !e.contains("p%4") && !e.contains("%ff"),
            "{bad}: {e}"
        );
    }
    assert_eq!(hide_password("redis://u:secret@h:1/2"), "redis://u:***@h:1/2");
    assert_eq!(hide_password("redis://secret@h"), "redis://***@h");
    assert_eq!(hide_password("postgres://app@h/db"), "postgres://app@h/db");
    assert_eq!(hide_password("redis://h/2"), "redis://h/2");
    let e = Target::parse("http://u:pw@h/x").unwrap_err();
    assert!(
        e.starts_with("\"http://u:***@h/x\": credentials") && !e.contains("pw"),
        "{e}"
    );
}

#[test]
fn unix_socket_paths_must_fit_sun_path() {
    let ok = format!("unix:///{}", "a".repeat(106));
    assert!(Target::parse(&ok).is_ok());
    let long = format!("unix:///{}", "a".repeat(107));
    let e = Target::parse(&long).unwrap_err();
    assert!(
        e.contains("socket path is too long (108 bytes; at most 107)"),
        "{e}"
    );
    // file:// paths are not sockets: no such limit.
    assert!(Target::parse(&format!("file:///{}", "a".repeat(300))).is_ok());
}

#[test]
fn relative_paths_get_an_example_of_their_own_scheme() {
    let e = Target::parse("file://run/app.ready").unwrap_err();
    assert!(e.contains("file:///run/app.ready") && !e.contains("unix:"), "{e}");
    let e = Target::parse("unix://run/app.sock").unwrap_err();
    assert!(e.contains("unix:///run/app.sock"), "{e}");
}

#[test]
fn bad_targets_name_themselves() {
    for (bad, why) in [
        ("ftp://x:1", "unknown scheme"),
        ("db:70000", "out of range"),
        ("db:0", "out of range"),
        (":5432", "missing host"),
        ("db", "missing port"),
        ("db:", "missing port"),
        ("db:http", "not a number"),
        ("::1:5432", "brackets"),
        ("[::1:5432", "unclosed"),
        ("unix://relative.sock", "absolute"),
        ("", "empty"),
        ("http://a b/", "valid host"),
    ] {
        let e = Target::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn mongo_kafka_and_dns_forms() {
    assert_eq!(
        Target::parse("mongodb://db"),
        Ok(Target::Mongo {
            host: "db".into(),
            port: 27017
        })
    );
    assert_eq!(
        Target::parse("kafka://[::1]:9093/"),
        Ok(Target::Kafka {
            host: "::1".into(),
            port: 9093
        })
    );
    assert_eq!(Target::parse("kafka://k").unwrap().to_string(), "kafka://k:9092");
    assert_eq!(
        Target::parse("mongodb://m:1").unwrap().to_string(),
        "mongodb://m:1"
    );
    assert_eq!(
        Target::parse("dns://svc.internal"),
        Ok(Target::Dns {
            name: "svc.internal".into()
        })
    );
    assert_eq!(Target::parse("dns://svc").unwrap().to_string(), "dns://svc");
    for (bad, why) in [
        ("mongodb://u:p@db", "host[:port] only"),
        ("mongodb://a,b", "host[:port] only"),
        ("kafka://k:0", "out of range"),
        ("dns://svc:53", "without a port"),
        ("dns://", "missing host"),
        ("dns://a b", "valid host"),
    ] {
        let e = Target::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn grpc_forms() {
    let g = |h: &str, p, s: &str| Target::Grpc {
        tls: false,
        host: h.into(),
        port: p,
        service: s.into(),
    };
    assert_eq!(
        Target::parse("grpc://127.0.0.1:50051"),
        Ok(g("127.0.0.1", 50051, ""))
    );
    assert_eq!(Target::parse("grpc://svc:9000/"), Ok(g("svc", 9000, "")));
    assert_eq!(
        Target::parse("GRPC://[::1]:9000/my.pkg.Orders"),
        Ok(g("::1", 9000, "my.pkg.Orders"))
    );
    assert_eq!(Target::parse("grpc://h:1/a%20b/c"), Err("\"grpc://h:1/a%20b/c\": the service name has a space, ?, # or a control character (percent-encode it)".into()));
    assert_eq!(Target::parse("grpc://h:1/a%2Fb"), Ok(g("h", 1, "a/b")));
    assert_eq!(g("::1", 9000, "x").to_string(), "grpc://[::1]:9000/x");
    assert_eq!(g("h", 1, "").to_string(), "grpc://h:1");
    let Ok(Target::Grpc { tls, .. }) = Target::parse("grpcs://h:443/x") else {
        panic!()
    };
    assert!(tls);
    assert_eq!(
        Target::parse("grpcs://h:443/x").unwrap().to_string(),
        "grpcs://h:443/x"
    );
    for (bad, why) in [
        ("grpc://svc", "missing port"),
        ("grpc://svc/x", "missing port"),
        ("grpc://u:p@svc:1", "credentials"),
        ("grpc://svc:1/x?y", "service name"),
        ("grpc://svc:1/%zz", "bad percent-encoding in the service name"),
        ("grpcs://svc", "missing port"),
    ] {
        let e = Target::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn mysql_amqp_nats_take_host_and_port_and_ignore_logins() {
    for (text, want) in [
        (
            "mysql://db",
            Target::Mysql {
                host: "db".into(),
                port: 3306,
            },
        ),
        (
            "MariaDB://root:pw@[::1]:3307/app?ssl=1",
            Target::Mysql {
                host: "::1".into(),
                port: 3307,
            },
        ),
        (
            "amqp://mq",
            Target::Amqp {
                host: "mq".into(),
                port: 5672,
            },
        ),
        (
            "amqp://guest:guest@mq:5673/%2Fvhost",
            Target::Amqp {
                host: "mq".into(),
                port: 5673,
            },
        ),
        (
            "nats://n",
            Target::Nats {
                host: "n".into(),
                port: 4222,
            },
        ),
        (
            "nats://tok@n:4223/",
            Target::Nats {
                host: "n".into(),
                port: 4223,
            },
        ),
    ] {
        assert_eq!(Target::parse(text).as_ref(), Ok(&want), "{text}");
        // Shown without the login, so no password is ever printed.
        let shown = want.to_string();
        assert!(!shown.contains("pw") && !shown.contains("guest@"), "{shown}");
    }
    assert_eq!(
        Target::parse("amqp://u:pw@mq:1/v").unwrap().to_string(),
        "amqp://mq:1"
    );
    for (bad, why) in [
        ("mysql://u:pw@db:0", "out of range"),
        ("amqp://u:pw@:5672", "missing host"),
        ("nats://u:pw@n:4222/x", "unexpected \"/x\""),
        ("mysql://u:pw@db:x", "not a number"),
    ] {
        let e = Target::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        assert!(e.contains("u:***@") && !e.contains("pw"), "{bad}: {e}");
    }
    // A lone word before @ in a NATS URL is a token: hidden too.
    let e = Target::parse("nats://s3cret@n:x").unwrap_err();
    assert!(e.contains("nats://***@n:x") && !e.contains("s3cret"), "{e}");
}

#[test]
fn display_round_trips_scheme() {
    assert_eq!(tcp("::1", 5).to_string(), "tcp://[::1]:5");
    assert_eq!(Target::parse("redis://r").unwrap().to_string(), "redis://r:6379");
    assert_eq!(
        Target::parse("redis://:pw@r/3").unwrap().to_string(),
        "redis://r:6379/3"
    );
}
