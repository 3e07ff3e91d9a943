//! The cases of Flux's own policy unit tests (image-reflector-controller
//! `internal/policy/{filter,numerical,alphabetical,semver,factory}_test.go`) as Rust tables,
//! plus the Deepdesk tag scheme and our error messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn numerical(order: Order) -> PolicyChoice {
    PolicyChoice {
        filter: None,
        rule: PolicyRule::Numerical {
            order,
            invalid: InvalidNumbers::Fail,
        },
    }
}

fn alphabetical(order: Order) -> PolicyChoice {
    PolicyChoice {
        filter: None,
        rule: PolicyRule::Alphabetical { order },
    }
}

fn semver(range: &str) -> PolicyChoice {
    PolicyChoice {
        filter: None,
        rule: PolicyRule::SemVer {
            range: range.into(),
        },
    }
}

/// Flux's filter test keeps the keys; we check the keys the filter produces.
fn filter_keys(tags: &[&str], pattern: &str, extract: &str) -> Vec<String> {
    let policy = Policy::compile(&PolicyChoice {
        filter: Some(TagFilter {
            pattern: pattern.into(),
            extract: extract.into(),
        }),
        rule: PolicyRule::Alphabetical { order: Order::Asc },
    })
    .unwrap();
    let mut locs = policy
        .filter
        .as_ref()
        .map(|f| f.regex.regex().capture_locations());
    let mut keys: Vec<String> = tags
        .iter()
        .filter_map(|t| policy.key_of(t, locs.as_mut()).map(|k| k.into_owned()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn flux_regex_filter_cases() {
    let complex = [
        "123-123.123.abcd123-debug",
        "123-123.123.abcd123",
        "123-123.123.abcd456-debug",
        "123-123.123.abcd456",
    ];
    // (label, tags, pattern, extract, expected keys)
    type Case<'a> = (&'a str, &'a [&'a str], &'a str, &'a str, &'a [&'a str]);
    let cases: &[Case] = &[
        ("none", &["a"], "", "", &["a"]),
        (
            "valid pattern",
            &["ver1", "ver2", "ver3", "rel1"],
            "^ver",
            "",
            &["ver1", "ver2", "ver3"],
        ),
        (
            "valid pattern with capture group",
            &["ver1", "ver2", "ver3", "rel1"],
            r"ver(\d+)",
            "$1",
            &["1", "2", "3"],
        ),
        (
            "complex regex 1",
            &complex,
            r"^(123-[0-9]+\.[0-9]+\.[a-z0-9]+-debug)",
            "",
            &["123-123.123.abcd123-debug", "123-123.123.abcd456-debug"],
        ),
        (
            "complex regex 2",
            &complex,
            r"^(?P<tag>123-[0-9]+\.[0-9]+\.[a-z0-9]+[^-debug])",
            "$tag",
            &["123-123.123.abcd123", "123-123.123.abcd456"],
        ),
        (
            "complex regex 3",
            &complex,
            r"^(?P<tag>123-[0-9]+\.[0-9]+\.[a-z0-9]+$)",
            "$tag",
            &["123-123.123.abcd123", "123-123.123.abcd456"],
        ),
    ];
    for (label, tags, pattern, extract, want) in cases {
        assert_eq!(filter_keys(tags, pattern, extract), *want, "{label}");
    }
}

#[test]
fn flux_order_parsing() {
    assert_eq!(Order::parse("").unwrap(), Order::Asc);
    assert_eq!(Order::parse("asc").unwrap(), Order::Asc);
    assert_eq!(Order::parse("ASC").unwrap(), Order::Asc);
    assert_eq!(Order::parse("Desc").unwrap(), Order::Desc);
    let err = Order::parse("invalid").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid order argument provided: 'invalid', must be one of: ASC, DESC"
    );
}

#[test]
fn flux_numerical_latest_cases() {
    let cases: &[(&str, Order, &[&str], Option<&str>)] = &[
        (
            "integers ascending",
            Order::Asc,
            &[
                "-62", "-88", "73", "72", "15", "16", "15", "29", "-33", "-91",
            ],
            Some("73"),
        ),
        (
            "integers descending",
            Order::Desc,
            &["5", "-8", "-78", "25", "70", "-4", "80", "92", "-20", "-24"],
            Some("-78"),
        ),
        (
            "floats ascending",
            Order::Asc,
            &[
                "47.40896403322944",
                "-27.8520927455902",
                "-27.930666514224427",
                "-31.352485948094568",
                "-50.41072694704882",
                "-21.962849842263736",
                "24.71884721436865",
                "-39.99177354004344",
                "53.47333823144817",
                "3.2008658570411086",
            ],
            Some("53.47333823144817"),
        ),
        (
            "floats descending",
            Order::Desc,
            &[
                "-65.27202780220686",
                "57.82948329142309",
                "22.40184684363291",
                "-86.36934305697784",
                "-90.29082099756083",
                "-12.041712603564264",
                "77.70488240399305",
                "-38.98425003883552",
                "16.06867070412028",
                "53.735674335181216",
            ],
            Some("-90.29082099756083"),
        ),
        (
            "unix timestamps ascending",
            Order::Asc,
            &[
                "1606234201",
                "1606364286",
                "1606334092",
                "1606334284",
                "1606334201",
            ],
            Some("1606364286"),
        ),
        (
            "unix timestamps descending",
            Order::Desc,
            &[
                "1606234201",
                "1606364286",
                "1606334092",
                "1606334284",
                "1606334201",
            ],
            Some("1606234201"),
        ),
        ("single value ascending", Order::Asc, &["1"], Some("1")),
        ("single value descending", Order::Desc, &["1"], Some("1")),
        (
            "invalid numerical value",
            Order::Asc,
            &["0", "1a", "b"],
            None,
        ),
        ("empty version list", Order::Asc, &[], None),
    ];
    for (label, order, tags, want) in cases {
        // Flux shuffles; the answer must not depend on the order (except for ties).
        for rotation in 0..tags.len().max(1) {
            let mut tags: Vec<&str> = tags.to_vec();
            if !tags.is_empty() {
                tags.rotate_left(rotation);
            }
            let got = select_latest_tag(&numerical(*order), &tags);
            match want {
                Some(w) => assert_eq!(got.unwrap().tag, *w, "{label} rotation {rotation}"),
                None => assert!(got.is_err(), "{label}: {got:?}"),
            }
        }
    }
}

#[test]
fn flux_alphabetical_latest_cases() {
    let calver: &[&str] = &["16.04", "16.04.1", "16.10", "20.04", "20.10"];
    let names: &[&str] = &["xenial", "yakkety", "zesty", "artful", "bionic"];
    let ts: &[&str] = &[
        "1606234201",
        "1606364286",
        "1606334092",
        "1606334284",
        "1606334201",
    ];
    let rel: &[&str] = &[
        "rel-1606234201",
        "rel-1606364286",
        "rel-1606334092",
        "rel-1606334284",
        "rel-1606334201",
    ];
    let rfc: &[&str] = &[
        "2021-01-08T21-18-21Z",
        "2020-05-08T21-18-21Z",
        "2021-01-08T19-20-00Z",
        "1990-01-08T00-20-00Z",
        "2023-05-08T00-20-00Z",
    ];
    let cases: &[(&str, Order, &[&str], Option<&str>)] = &[
        ("Ubuntu CalVer", Order::Asc, calver, Some("20.10")),
        (
            "Ubuntu CalVer descending",
            Order::Desc,
            calver,
            Some("16.04"),
        ),
        ("Ubuntu code names", Order::Asc, names, Some("zesty")),
        (
            "Ubuntu code names descending",
            Order::Desc,
            names,
            Some("artful"),
        ),
        ("timestamps", Order::Asc, ts, Some("1606364286")),
        ("timestamps desc", Order::Desc, ts, Some("1606234201")),
        ("timestamps prefix", Order::Asc, rel, Some("rel-1606364286")),
        ("RFC3339", Order::Asc, rfc, Some("2023-05-08T00-20-00Z")),
        (
            "RFC3339 desc",
            Order::Desc,
            rfc,
            Some("1990-01-08T00-20-00Z"),
        ),
        ("empty version list", Order::Asc, &[], None),
    ];
    for (label, order, tags, want) in cases {
        let got = select_latest_tag(&alphabetical(*order), tags);
        match want {
            Some(w) => assert_eq!(got.unwrap().tag, *w, "{label}"),
            None => assert!(matches!(got, Err(PolicyError::NoCandidates)), "{label}"),
        }
    }
    // Byte-wise, not locale: uppercase sorts before lowercase, "é" after "z".
    assert_eq!(
        select_latest_tag(&alphabetical(Order::Asc), &["Zeta", "alpha", "é"])
            .unwrap()
            .tag,
        "é"
    );
    assert_eq!(
        select_latest_tag(&alphabetical(Order::Desc), &["Zeta", "alpha"])
            .unwrap()
            .tag,
        "Zeta"
    );
}

#[test]
fn flux_new_semver_ranges() {
    for r in ["1.0.x", "^1.0", "=1.0.0", "~1.0", ">=1.0", ">0,<2.0"] {
        assert!(Policy::compile(&semver(r)).is_ok(), "{r}");
    }
    for r in ["1.0.0p", "1x", "x1", "-1", "a", "", "*-*"] {
        assert!(
            matches!(
                Policy::compile(&semver(r)),
                Err(PolicyError::InvalidRange { .. })
            ),
            "{r:?}"
        );
    }
}

#[test]
fn flux_semver_latest_cases() {
    let cases: &[(&str, &str, &[&str], Option<&str>)] = &[
        (
            "valid format",
            "1.0.x",
            &["1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"],
            Some("1.0.1"),
        ),
        (
            "valid format prefix",
            "1.0.x",
            &["v1.2.3", "v1.0.0", "v0.1.0"],
            Some("v1.0.0"),
        ),
        (
            "invalid format prefix",
            "1.0.x",
            &["b1.2.3", "b1.0.0", "b0.1.0"],
            None,
        ),
        ("empty list", "1.0.x", &[], None),
        ("non-matching version list", "1.0.x", &["1.2.0"], None),
    ];
    for (label, range, tags, want) in cases {
        let got = select_latest_tag(&semver(range), tags);
        match want {
            Some(w) => assert_eq!(got.unwrap().tag, *w, "{label}"),
            None => assert!(got.is_err(), "{label}"),
        }
    }
}

#[test]
fn semver_policy_only_takes_three_part_versions_and_skips_prereleases() {
    let tags = [
        "1.2",
        "2",
        "1.5.0",
        "1.6.0-rc.1",
        "1.4.9",
        "v1.5.1",
        "01.7.0",
    ];
    assert_eq!(
        select_latest_tag(&semver(">=1.0.0"), &tags).unwrap().tag,
        "v1.5.1"
    );
    // A prerelease in the range opens prereleases.
    assert_eq!(
        select_latest_tag(&semver(">=1.0.0-0"), &tags).unwrap().tag,
        "1.6.0-rc.1"
    );
    // Masterminds, not Cargo: a bare version is an exact match.
    assert_eq!(
        select_latest_tag(&semver("1.4.9"), &tags).unwrap().tag,
        "1.4.9"
    );
    assert_eq!(
        select_latest_tag(&semver("1.4 - 1.5.0 || ^3"), &tags)
            .unwrap()
            .tag,
        "1.5.0"
    );
    let err = select_latest_tag(&semver("^3"), &tags).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to determine latest version from provided list (range '^3')"
    );
}

#[test]
fn deepdesk_main_sha_timestamp_tags() {
    let choice = PolicyChoice {
        filter: Some(TagFilter {
            pattern: r"^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$".into(),
            extract: "$ts".into(),
        }),
        rule: PolicyRule::Numerical {
            order: Order::Asc,
            invalid: InvalidNumbers::Fail,
        },
    };
    let tags = [
        "main-0a1b2c3-1700000100",
        "main-deadbee-1700000300",
        "feature-x-1700000900",
        "main-abc1234-1700000200",
        "main-abc1234-17-rc",
        "main-ABCDEF0-1700000250",
        "latest",
    ];
    let sel = select_latest_tag(&choice, &tags).unwrap();
    assert_eq!(sel.tag, "main-deadbee-1700000300");
    assert_eq!(sel.key, "1700000300");
    let desc = PolicyChoice {
        rule: PolicyRule::Numerical {
            order: Order::Desc,
            invalid: InvalidNumbers::Fail,
        },
        ..choice.clone()
    };
    assert_eq!(
        select_latest_tag(&desc, &tags).unwrap().tag,
        "main-0a1b2c3-1700000100"
    );
    // The docs' unanchored `.*` variant lets `17-rc` through and the policy fails, naming it.
    let loose = PolicyChoice {
        filter: Some(TagFilter {
            pattern: r"^main-[a-fA-F0-9]+-(?P<ts>.*)".into(),
            extract: "$ts".into(),
        }),
        ..choice.clone()
    };
    let err = select_latest_tag(&loose, &tags).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to parse invalid numeric value '17-rc' (from tag 'main-abc1234-17-rc')"
    );
    // Opt-in: skip it instead.
    let skipping = PolicyChoice {
        rule: PolicyRule::Numerical {
            order: Order::Asc,
            invalid: InvalidNumbers::Skip,
        },
        ..loose
    };
    let sel = select_latest_tag(&skipping, &tags).unwrap();
    assert_eq!(sel.tag, "main-deadbee-1700000300");
    assert_eq!(sel.skipped, vec!["main-abc1234-17-rc"]);
}

#[test]
fn later_tag_with_same_key_wins() {
    let choice = PolicyChoice {
        filter: Some(TagFilter {
            pattern: r"^(?:a|b)-(\d+)$".into(),
            extract: "$1".into(),
        }),
        rule: PolicyRule::Numerical {
            order: Order::Asc,
            invalid: InvalidNumbers::Fail,
        },
    };
    let sel = select_latest_tag(&choice, &["a-5", "a-3", "b-5"]).unwrap();
    assert_eq!(sel.tag, "b-5");
    // Numerical ties between different keys go to the later key.
    let sel = select_latest_tag(&numerical(Order::Asc), &["1.0", "1", "0.5"]).unwrap();
    assert_eq!(sel.tag, "1");
}

#[test]
fn filter_uses_go_ascii_classes() {
    // `\d` must not accept non-ASCII digits, as in Go.
    let choice = PolicyChoice {
        filter: Some(TagFilter {
            pattern: r"^v(\d+)$".into(),
            extract: "$1".into(),
        }),
        rule: PolicyRule::Numerical {
            order: Order::Asc,
            invalid: InvalidNumbers::Fail,
        },
    };
    let sel = select_latest_tag(&choice, &["v2", "v٣", "v10"]).unwrap();
    assert_eq!(sel.tag, "v10");
}

#[test]
fn bad_input_errors_name_field_and_value() {
    let bad = PolicyChoice {
        filter: Some(TagFilter {
            pattern: "^main-(".into(),
            extract: String::new(),
        }),
        rule: PolicyRule::Alphabetical { order: Order::Asc },
    };
    let err = Policy::compile(&bad).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid regular expression pattern '^main-(': "),
        "{err}"
    );
    assert!(err.contains("unclosed group"), "{err}");
    let none = PolicyChoice {
        filter: Some(TagFilter {
            pattern: "^release-".into(),
            extract: String::new(),
        }),
        rule: PolicyRule::Alphabetical { order: Order::Asc },
    };
    let err = select_latest_tag(&none, &["main-1"]).unwrap_err();
    assert_eq!(err.to_string(), "version list argument cannot be empty");
}
