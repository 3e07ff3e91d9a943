//! Masterminds/semver v3 test tables (constraints_test.go, version_test.go at 3.4+), re-expressed
//! as Rust data and run against our port, plus fluxcd/pkg `version.ParseVersion` cases.

#![allow(clippy::unwrap_used)]

use super::*;

const PARSE_CONSTRAINT: &[(&str, Option<Op>, &str)] = &[
    (">= 1.2", Some(Op::GreaterEqual), "1.2.0"),
    ("1.0", Some(Op::TildeOrEqual), "1.0.0"),
    ("foo", None, ""),
    ("<= 1.2", Some(Op::LessEqual), "1.2.0"),
    ("=< 1.2", Some(Op::LessEqual), "1.2.0"),
    ("=> 1.2", Some(Op::GreaterEqual), "1.2.0"),
    ("v1.2", Some(Op::TildeOrEqual), "1.2.0"),
    ("=1.5", Some(Op::TildeOrEqual), "1.5.0"),
    ("> 1.3", Some(Op::Greater), "1.3.0"),
    ("< 1.4.1", Some(Op::Less), "1.4.1"),
    ("< 40.50.10", Some(Op::Less), "40.50.10"),
];

const CONSTRAINT_CHECK: &[(&str, &str, bool)] = &[
    ("=2.0.0", "1.2.3", false),
    ("=2.0.0", "2.0.0", true),
    ("=2.0", "1.2.3", false),
    ("=2.0", "2.0.0", true),
    ("=2.0", "2.0.1", true),
    ("4.1", "4.1.0", true),
    ("!=4.1.0", "4.1.0", false),
    ("!=4.1.0", "4.1.1", true),
    ("!=4.1", "4.1.0", false),
    ("!=4.1", "4.1.1", false),
    ("!=4.1", "5.1.0-alpha.1", false),
    ("!=4.1.0", "5.1.0-alpha.1", false),
    ("!=4.1-alpha", "4.1.0", true),
    ("!=4.1", "5.1.0", true),
    ("<11", "0.1.0", true),
    ("<11", "11.1.0", false),
    ("<1.1", "0.1.0", true),
    ("<1.1", "1.1.0", false),
    ("<1.1", "1.1.1", false),
    ("<=11", "1.2.3", true),
    ("<=11", "12.2.3", false),
    ("<=11", "11.2.3", true),
    ("<=1.1", "1.2.3", false),
    ("<=1.1", "0.1.0", true),
    ("<=1.1", "1.1.0", true),
    ("<=1.1", "1.1.1", true),
    (">1.1", "4.1.0", true),
    (">1.1", "1.1.0", false),
    (">0", "0", false),
    (">0", "1", true),
    (">0", "0.0.1-alpha", false),
    (">0.0", "0.0.1-alpha", false),
    (">0-0", "0.0.1-alpha", false),
    (">0.0-0", "0.0.1-alpha", false),
    (">0", "0.0.0-alpha", false),
    (">0-0", "0.0.0-alpha", false),
    (">0.0.0-0", "0.0.0-alpha", true),
    (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
    (">1.2.3-alpha.1", "1.3.3-alpha.2", true),
    (">11", "11.1.0", false),
    (">11.1", "11.1.0", false),
    (">11.1", "11.1.1", false),
    (">11.1", "11.2.1", true),
    (">=11", "11.1.2", true),
    (">=11.1", "11.1.2", true),
    (">=11.1", "11.0.2", false),
    (">=1.1", "4.1.0", true),
    (">=1.1", "1.1.0", true),
    (">=1.1", "0.0.9", false),
    (">=0", "0.0.1-alpha", false),
    (">=0.0", "0.0.1-alpha", false),
    (">=0-0", "0.0.1-alpha", true),
    (">=0.0-0", "0.0.1-alpha", true),
    (">=0", "0.0.0-alpha", false),
    (">=0-0", "0.0.0-alpha", true),
    (">=0.0.0-0", "0.0.0-alpha", true),
    (">=0.0.0-0", "1.2.3", true),
    (">=0.0.0-0", "3.4.5-beta.1", true),
    ("<0", "0.0.0-alpha", false),
    ("<0-z", "0.0.0-alpha", true),
    (">=0", "0", true),
    ("=0", "1", false),
    ("*", "1", true),
    ("*", "4.5.6", true),
    ("*", "1.2.3-alpha.1", false),
    ("*-0", "1.2.3-alpha.1", true),
    ("2.*", "1", false),
    ("2.*", "3.4.5", false),
    ("2.*", "2.1.1", true),
    ("2.1.*", "2.1.1", true),
    ("2.1.*", "2.2.1", false),
    ("", "1", true),
    ("", "4.5.6", true),
    ("", "1.2.3-alpha.1", false),
    ("2", "1", false),
    ("2", "3.4.5", false),
    ("2", "2.1.1", true),
    ("2.1", "2.1.1", true),
    ("2.1", "2.2.1", false),
    ("~1.2.3", "1.2.4", true),
    ("~1.2.3", "1.3.4", false),
    ("~1.2", "1.2.4", true),
    ("~1.2", "1.3.4", false),
    ("~1", "1.2.4", true),
    ("~1", "2.3.4", false),
    ("~0.2.3", "0.2.5", true),
    ("~0.2.3", "0.3.5", false),
    ("~1.2.3-beta.2", "1.2.3-beta.4", true),
    ("~1.2.3-beta.2", "1.2.4-beta.2", true),
    ("~1.2.3-beta.2", "1.3.4-beta.2", false),
    ("^1.2.3", "1.8.9", true),
    ("^1.2.3", "2.8.9", false),
    ("^1.2.3", "1.2.1", false),
    ("^1.1.0", "2.1.0", false),
    ("^1.2.0", "2.2.1", false),
    ("^1.2.0", "1.2.1-alpha.1", false),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", true),
    ("^1.2.0-alpha.0", "1.2.1-alpha.0", true),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", false),
    ("^1.2", "1.8.9", true),
    ("^1.2", "2.8.9", false),
    ("^1", "1.8.9", true),
    ("^1", "2.8.9", false),
    ("^0.2.3", "0.2.5", true),
    ("^0.2.3", "0.5.6", false),
    ("^0.2", "0.2.5", true),
    ("^0.2", "0.5.6", false),
    ("^0.0.3", "0.0.3", true),
    ("^0.0.3", "0.0.4", false),
    ("^0.0", "0.0.3", true),
    ("^0.0", "0.1.4", false),
    ("^0.0", "1.0.4", false),
    ("^0", "0.2.3", true),
    ("^0", "1.1.4", false),
    ("^0.2.3-beta.2", "0.2.3-beta.4", true),
    ("^0.2.3-beta.2", "0.2.4-beta.2", true),
    ("^0.2.3-beta.2", "0.3.4-beta.2", false),
    ("^0.2.3-beta.2", "0.2.3-beta.2", true),
];

const NEW_CONSTRAINT: &[(&str, usize, usize, bool)] = &[
    (">= 1.1", 1, 1, false),
    (">40.50.60, < 50.70", 1, 2, false),
    ("2.0", 1, 1, false),
    ("v2.3.5-20161202202307-sha.e8fc5e5", 1, 1, false),
    ("v1.2.3-0abc", 1, 1, false),
    ("v1.2.3-beta.01", 1, 1, true),
    (">= bar", 0, 0, true),
    ("BAR >= 1.2.3", 0, 0, true),
    (">= 1.2.3 < 2.0", 1, 2, false),
    (">= 1.2.3 < 2.0 || => 3.0 < 4", 2, 2, false),
    (">= 1.2.3, < 2.0", 1, 2, false),
    (">= 1.2.3, < 2.0 || => 3.0, < 4", 2, 2, false),
    ("3 - 4 || => 3.0, < 4", 2, 2, false),
    ("12.3.4.1234", 0, 0, true),
    ("12.23.4.1234", 0, 0, true),
    ("12.3.34.1234", 0, 0, true),
    ("12.3.34 ~1.2.3", 1, 2, false),
    ("12.3.34~ 1.2.3", 0, 0, true),
    ("1.0.0 - 2.0.0, <=2.0.0", 1, 3, false),
];

const CONSTRAINTS_CHECK: &[(&str, &str, bool)] = &[
    ("*", "1.2.3", true),
    ("~0.0.0", "1.2.3", true),
    ("0.x.x", "1.2.3", false),
    ("0.0.x", "1.2.3", false),
    ("0.0.0", "1.2.3", false),
    ("*", "1.2.3", true),
    ("^0.0.0", "1.2.3", false),
    ("= 2.0", "1.2.3", false),
    ("= 2.0", "2.0.0", true),
    ("4.1", "4.1.0", true),
    ("4.1.x", "4.1.3", true),
    ("1.x", "1.4", true),
    ("!=4.1", "4.1.0", false),
    ("!=4.1-alpha", "4.1.0-alpha", false),
    ("!=4.1-alpha", "4.1.1-alpha", false),
    ("!=4.1-alpha", "4.1.0", true),
    ("!=4.1", "5.1.0", true),
    ("!=4.x", "5.1.0", true),
    ("!=4.x", "4.1.0", false),
    ("!=4.1.x", "4.2.0", true),
    ("!=4.2.x", "4.2.3", false),
    (">1.1", "4.1.0", true),
    (">1.1", "1.1.0", false),
    ("<1.1", "0.1.0", true),
    ("<1.1", "1.1.0", false),
    ("<1.1", "1.1.1", false),
    ("<1.x", "1.1.1", false),
    ("<1.x", "0.1.1", true),
    ("<1.x", "2.0.0", false),
    ("<1.1.x", "1.2.1", false),
    ("<1.1.x", "1.1.500", false),
    ("<1.1.x", "1.0.500", true),
    ("<1.2.x", "1.1.1", true),
    (">=1.1", "4.1.0", true),
    (">=1.1", "4.1.0-beta", false),
    (">=1.1", "1.1.0", true),
    (">=1.1", "0.0.9", false),
    ("<=1.1", "0.1.0", true),
    ("<=1.1", "0.1.0-alpha", false),
    ("<=1.1-a", "0.1.0-alpha", true),
    ("<=1.1", "1.1.0", true),
    ("<=1.x", "1.1.0", true),
    ("<=2.x", "3.0.0", false),
    ("<=1.1", "1.1.1", true),
    ("<=1.1.x", "1.2.500", false),
    ("<=4.5", "3.4.0", true),
    ("<=4.5", "3.7.0", true),
    ("<=4.5", "4.6.3", false),
    (">1.1, <2", "1.1.1", false),
    (">1.1, <2", "1.2.1", true),
    (">1.1, <3", "4.3.2", false),
    (">=1.1, <2, !=1.2.3", "1.2.3", false),
    (">1.1 <2", "1.1.1", false),
    (">1.1 <2", "1.2.1", true),
    (">1.1    <3", "4.3.2", false),
    (">=1.1    <2    !=1.2.3", "1.2.3", false),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
    (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
    (">=1.1 <2 !=1.2.3", "1.2.3", false),
    (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", true),
    (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", false),
    (">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", true),
    (">=1.1 <2 !=1.2.3 || > 3", "3.0.0", false),
    (">=1.1 <2 !=1.2.3 || > 3", "1.2.3", false),
    ("> 1.1, <     2", "1.1.1", false),
    (">   1.1, <2", "1.2.1", true),
    (">1.1, <  3", "4.3.2", false),
    (">= 1.1, <     2, !=1.2.3", "1.2.3", false),
    ("> 1.1 < 2", "1.1.1", false),
    (">1.1 < 2", "1.2.1", true),
    ("> 1.1    <3", "4.3.2", false),
    (">=1.1    < 2    != 1.2.3", "1.2.3", false),
    (">= 1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
    (">= 1.1, <2, != 1.2.3 || > 3", "3.1.2", false),
    (">= 1.1, <2, != 1.2.3 || >= 3", "3.0.0", true),
    (">= 1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
    (">= 1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
    (">= 1.1 <2 != 1.2.3", "1.2.3", false),
    (">= 1.1 <2 != 1.2.3 || > 3", "4.1.2", true),
    (">= 1.1 <2 != 1.2.3 || > 3", "3.1.2", false),
    (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", true),
    (">= 1.1 < 2 !=1.2.3 || > 3", "3.0.0", false),
    (">=1.1 < 2 !=1.2.3 || > 3", "1.2.3", false),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1", true),
    (">= 1.0.0  <= 2.0.0-beta", "3.0.0", false),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", true),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false),
    (
        ">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3",
        "1.0.1-beta",
        true,
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3",
        "1.0.1-beta",
        false,
    ),
    (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true),
    ("1.1 - 2", "1.1.1", true),
    ("1.5.0 - 4.5", "3.7.0", true),
    ("1.1-3", "4.3.2", false),
    ("^1.1", "1.1.1", true),
    ("^1.1", "4.3.2", false),
    ("^1.x", "1.1.1", true),
    ("^2.x", "1.1.1", false),
    ("^1.x", "2.1.1", false),
    ("^1.x", "1.1.1-beta1", false),
    ("^1.1.2-alpha", "1.2.1-beta1", true),
    ("^1.2.x-alpha", "1.1.1-beta1", false),
    ("^0.0.1", "0.0.1", true),
    ("^0.0.1", "0.3.1", false),
    ("~*", "2.1.1", true),
    ("~1", "2.1.1", false),
    ("~1", "1.3.5", true),
    ("~1", "1.4", true),
    ("~1.x", "2.1.1", false),
    ("~1.x", "1.3.5", true),
    ("~1.x", "1.4", true),
    ("~1.1", "1.1.1", true),
    ("~1.1", "1.1.1-alpha", false),
    ("~1.1-alpha", "1.1.1-beta", true),
    ("~1.1.1-beta", "1.1.1-alpha", false),
    ("~1.1.1-beta", "1.1.1", true),
    ("~1.2.3", "1.2.5", true),
    ("~1.2.3", "1.2.2", false),
    ("~1.2.3", "1.3.2", false),
    ("~1.1", "1.2.3", false),
    ("~1.3", "2.4.5", false),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
];

const CONSTRAINTS_CHECK_INCLUDE_PRE: &[(&str, &str, bool)] = &[
    (">=1.1", "4.1.0-beta", true),
    (">1.1", "4.1.0-beta", true),
    ("<=1.1", "0.1.0-alpha", true),
    ("<1.1", "0.1.0-alpha", true),
    ("^1.x", "1.1.1-beta1", true),
    ("~1.1", "1.1.1-alpha", true),
    ("*", "1.2.3-alpha", true),
    ("= 2.0", "2.0.1-beta", true),
    ("*", "1.2.3", true),
    ("~0.0.0", "1.2.3", true),
    ("0.x.x", "1.2.3", false),
    ("0.0.x", "1.2.3", false),
    ("0.0.0", "1.2.3", false),
    ("*", "1.2.3", true),
    ("^0.0.0", "1.2.3", false),
    ("= 2.0", "1.2.3", false),
    ("= 2.0", "2.0.0", true),
    ("4.1", "4.1.0", true),
    ("4.1.x", "4.1.3", true),
    ("1.x", "1.4", true),
    ("!=4.1", "4.1.0", false),
    ("!=4.1-alpha", "4.1.0-alpha", false),
    ("!=4.1-alpha", "4.1.1-alpha", false),
    ("!=4.1-alpha", "4.1.0", true),
    ("!=4.1", "5.1.0", true),
    ("!=4.x", "5.1.0", true),
    ("!=4.x", "4.1.0", false),
    ("!=4.1.x", "4.2.0", true),
    ("!=4.2.x", "4.2.3", false),
    (">1.1", "4.1.0", true),
    (">1.1", "1.1.0", false),
    ("<1.1", "0.1.0", true),
    ("<1.1", "1.1.0", false),
    ("<1.1", "1.1.1", false),
    ("<1.x", "1.1.1", false),
    ("<1.x", "0.1.1", true),
    ("<1.x", "2.0.0", false),
    ("<1.1.x", "1.2.1", false),
    ("<1.1.x", "1.1.500", false),
    ("<1.1.x", "1.0.500", true),
    ("<1.2.x", "1.1.1", true),
    (">=1.1", "4.1.0", true),
    (">=1.1", "1.1.0", true),
    (">=1.1", "0.0.9", false),
    ("<=1.1", "0.1.0", true),
    ("<=1.1-a", "0.1.0-alpha", true),
    ("<=1.1", "1.1.0", true),
    ("<=1.x", "1.1.0", true),
    ("<=2.x", "3.0.0", false),
    ("<=1.1", "1.1.1", true),
    ("<=1.1.x", "1.2.500", false),
    ("<=4.5", "3.4.0", true),
    ("<=4.5", "3.7.0", true),
    ("<=4.5", "4.6.3", false),
    (">1.1, <2", "1.1.1", false),
    (">1.1, <2", "1.2.1", true),
    (">1.1, <3", "4.3.2", false),
    (">=1.1, <2, !=1.2.3", "1.2.3", false),
    (">1.1 <2", "1.1.1", false),
    (">1.1 <2", "1.2.1", true),
    (">1.1    <3", "4.3.2", false),
    (">=1.1    <2    !=1.2.3", "1.2.3", false),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
    (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
    (">=1.1 <2 !=1.2.3", "1.2.3", false),
    (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", true),
    (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", false),
    (">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", true),
    (">=1.1 <2 !=1.2.3 || > 3", "3.0.0", false),
    (">=1.1 <2 !=1.2.3 || > 3", "1.2.3", false),
    ("> 1.1, <     2", "1.1.1", false),
    (">   1.1, <2", "1.2.1", true),
    (">1.1, <  3", "4.3.2", false),
    (">= 1.1, <     2, !=1.2.3", "1.2.3", false),
    ("> 1.1 < 2", "1.1.1", false),
    (">1.1 < 2", "1.2.1", true),
    ("> 1.1    <3", "4.3.2", false),
    (">=1.1    < 2    != 1.2.3", "1.2.3", false),
    (">= 1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
    (">= 1.1, <2, != 1.2.3 || > 3", "3.1.2", false),
    (">= 1.1, <2, != 1.2.3 || >= 3", "3.0.0", true),
    (">= 1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
    (">= 1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
    (">= 1.1 <2 != 1.2.3", "1.2.3", false),
    (">= 1.1 <2 != 1.2.3 || > 3", "4.1.2", true),
    (">= 1.1 <2 != 1.2.3 || > 3", "3.1.2", false),
    (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", true),
    (">= 1.1 < 2 !=1.2.3 || > 3", "3.0.0", false),
    (">=1.1 < 2 !=1.2.3 || > 3", "1.2.3", false),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1", true),
    (">= 1.0.0  <= 2.0.0-beta", "3.0.0", false),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", true),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false),
    (
        ">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3",
        "1.0.1-beta",
        true,
    ),
    (
        ">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3",
        "1.0.1-beta",
        false,
    ),
    (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true),
    ("1.1 - 2", "1.1.1", true),
    ("1.5.0 - 4.5", "3.7.0", true),
    ("1.1-3", "4.3.2", false),
    ("^1.1", "1.1.1", true),
    ("^1.1", "4.3.2", false),
    ("^1.x", "1.1.1", true),
    ("^2.x", "1.1.1", false),
    ("^1.x", "2.1.1", false),
    ("^1.1.2-alpha", "1.2.1-beta1", true),
    ("^1.2.x-alpha", "1.1.1-beta1", false),
    ("^0.0.1", "0.0.1", true),
    ("^0.0.1", "0.3.1", false),
    ("~*", "2.1.1", true),
    ("~1", "2.1.1", false),
    ("~1", "1.3.5", true),
    ("~1", "1.4", true),
    ("~1.x", "2.1.1", false),
    ("~1.x", "1.3.5", true),
    ("~1.x", "1.4", true),
    ("~1.1", "1.1.1", true),
    ("~1.1-alpha", "1.1.1-beta", true),
    ("~1.1.1-beta", "1.1.1-alpha", false),
    ("~1.1.1-beta", "1.1.1", true),
    ("~1.2.3", "1.2.5", true),
    ("~1.2.3", "1.2.2", false),
    ("~1.2.3", "1.3.2", false),
    ("~1.1", "1.2.3", false),
    ("~1.3", "2.4.5", false),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
];

const CONSTRAINTS_VALIDATE: &[(&str, &str, bool)] = &[
    ("*", "1.2.3", true),
    ("~0.0.0", "1.2.3", true),
    ("= 2.0", "1.2.3", false),
    ("= 2.0", "2.0.0", true),
    ("4.1", "4.1.0", true),
    ("4.1.x", "4.1.3", true),
    ("1.x", "1.4", true),
    ("!=4.1", "4.1.0", false),
    ("!=4.1", "5.1.0", true),
    ("!=4.x", "5.1.0", true),
    ("!=4.x", "4.1.0", false),
    ("!=4.1.x", "4.2.0", true),
    ("!=4.2.x", "4.2.3", false),
    (">1.1", "4.1.0", true),
    (">1.1", "1.1.0", false),
    ("<1.1", "0.1.0", true),
    ("<1.1", "1.1.0", false),
    ("<1.1", "1.1.1", false),
    ("<1.x", "1.1.1", false),
    ("<2.x", "1.1.1", true),
    ("<1.x", "2.1.1", false),
    ("<1.1.x", "1.2.1", false),
    ("<1.1.x", "1.1.500", false),
    ("<1.2.x", "1.1.1", true),
    (">=1.1", "4.1.0", true),
    (">=1.1", "1.1.0", true),
    (">=1.1", "0.0.9", false),
    ("<=1.1", "0.1.0", true),
    ("<=1.1", "1.1.0", true),
    ("<=1.x", "1.1.0", true),
    ("<=2.x", "3.1.0", false),
    ("<=1.1", "1.1.1", true),
    ("<=1.1.x", "1.2.500", false),
    (">1.1, <2", "1.1.1", false),
    (">1.1, <2", "1.2.1", true),
    (">1.1, <3", "4.3.2", false),
    (">=1.1, <2, !=1.2.3", "1.2.3", false),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
    (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
    ("1.1 - 2", "1.1.1", true),
    ("1.1-3", "4.3.2", false),
    ("^1.1", "1.1.1", true),
    ("^1.1", "1.1.1-alpha", false),
    ("^1.1.1-alpha", "1.1.1-beta", true),
    ("^1.1.1-beta", "1.1.1-alpha", false),
    ("^1.1", "4.3.2", false),
    ("^1.x", "1.1.1", true),
    ("^2.x", "1.1.1", false),
    ("^1.x", "2.1.1", false),
    ("^0.0.1", "0.1.3", false),
    ("^0.0.1", "0.0.1", true),
    ("~*", "2.1.1", true),
    ("~1", "2.1.1", false),
    ("~1", "1.3.5", true),
    ("~1", "1.3.5-beta", false),
    ("~1.x", "2.1.1", false),
    ("~1.x", "1.3.5", true),
    ("~1.x", "1.3.5-beta", false),
    ("~1.3.6-alpha", "1.3.5-beta", false),
    ("~1.3.5-alpha", "1.3.5-beta", true),
    ("~1.3.5-beta", "1.3.5-alpha", false),
    ("~1.x", "1.4", true),
    ("~1.1", "1.1.1", true),
    ("~1.2.3", "1.2.5", true),
    ("~1.2.3", "1.2.2", false),
    ("~1.2.3", "1.3.2", false),
    ("~1.1", "1.2.3", false),
    ("~1.3", "2.4.5", false),
];

const REWRITE_RANGE: &[(&str, &str)] = &[
    ("2 - 3", ">= 2, <= 3 "),
    ("2 - 3, 2 - 3", ">= 2, <= 3 ,>= 2, <= 3 "),
    ("2 - 3, 4.0.0 - 5.1", ">= 2, <= 3 ,>= 4.0.0, <= 5.1 "),
    ("2 - 3 4.0.0 - 5.1", ">= 2, <= 3 >= 4.0.0, <= 5.1 "),
    ("1.0.0 - 2.0.0 <=2.0.0", ">= 1.0.0, <= 2.0.0 <=2.0.0"),
];

const STRICT_NEW_VERSION: &[(&str, bool)] = &[
    ("1.2.3", false),
    ("1.2.3-alpha.01", true),
    ("1.2.3+test.01", false),
    ("1.2.3-alpha.-1", false),
    ("v1.2.3", true),
    ("1.0", true),
    ("v1.0", true),
    ("1", true),
    ("v1", true),
    ("1.2", true),
    ("1.2.beta", true),
    ("v1.2.beta", true),
    ("foo", true),
    ("1.2-5", true),
    ("v1.2-5", true),
    ("1.2-beta.5", true),
    ("v1.2-beta.5", true),
    ("\n1.2", true),
    ("\nv1.2", true),
    ("1.2.0-x.Y.0+metadata", false),
    ("v1.2.0-x.Y.0+metadata", true),
    ("1.2.0-x.Y.0+metadata-width-hypen", false),
    ("v1.2.0-x.Y.0+metadata-width-hypen", true),
    ("1.2.3-rc1-with-hypen", false),
    ("1.2.3-0abc123", false),
    ("1.2.3-beta.01", true),
    ("v1.2.3-rc1-with-hypen", true),
    ("1.2.3.4", true),
    ("v1.2.3.4", true),
    ("1.2.2147483648", false),
    ("1.2147483648.3", false),
    ("2147483648.3.0", false),
    ("20221209-update-renovatejson-v4", true),
    ("1.1.2+.123", true),
    ("1.0.0-alpha_beta", true),
    ("1.0.0-alpha..", true),
    ("1.0.0-alpha..1", true),
    ("01.1.1", true),
    ("1.01.1", true),
    ("1.1.01", true),
    ("9.8.7+meta+meta", true),
    ("1.2.31----RC-SNAPSHOT.12.09.1--.12+788", true),
    ("1.2.3-0123", true),
    ("1.2.3-0123.0123", true),
    ("+invalid", true),
    ("-invalid", true),
    ("-invalid.01", true),
    ("alpha+beta", true),
    ("1.2.3-alpha_beta+foo", true),
    ("1.0.0-alpha..1", true),
];

const NEW_VERSION: &[(&str, bool)] = &[
    ("1.2.3", false),
    ("1.2.3-alpha.01", true),
    ("1.2.3+test.01", false),
    ("1.2.3-alpha.-1", false),
    ("v1.2.3", false),
    ("1.0", false),
    ("v1.0", false),
    ("1", false),
    ("v1", false),
    ("1.2.beta", true),
    ("v1.2.beta", true),
    ("foo", true),
    ("1.2-5", false),
    ("v1.2-5", false),
    ("1.2-beta.5", false),
    ("v1.2-beta.5", false),
    ("\n1.2", true),
    ("\nv1.2", true),
    ("1.2.0-x.Y.0+metadata", false),
    ("v1.2.0-x.Y.0+metadata", false),
    ("1.2.0-x.Y.0+metadata-width-hypen", false),
    ("v1.2.0-x.Y.0+metadata-width-hypen", false),
    ("1.2.3-rc1-with-hypen", false),
    ("v1.2.3-rc1-with-hypen", false),
    ("1.2.3-0abc123", false),
    ("1.2.3-beta.01", true),
    ("1.2.3.4", true),
    ("v1.2.3.4", true),
    ("1.2.2147483648", false),
    ("1.2147483648.3", false),
    ("2147483648.3.0", false),
    ("12.3.4.1234", true),
    ("12.23.4.1234", true),
    ("12.3.34.1234", true),
    ("20221209-update-renovatejson-v4", false),
    ("1.1.2+.123", true),
    ("1.0.0-alpha_beta", true),
    ("1.0.0-alpha..", true),
    ("1.0.0-alpha..1", true),
    ("9.8.7+meta+meta", true),
    ("1.2.31----RC-SNAPSHOT.12.09.1--.12+788", true),
    ("01.1.1", false),
    ("1.01.1", false),
    ("1.1.01", false),
];

const COMPARE: &[(&str, &str, i8)] = &[
    ("1.2.3", "1.5.1", -1),
    ("2.2.3", "1.5.1", 1),
    ("2.2.3", "2.2.2", 1),
    ("3.2-beta", "3.2-beta", 0),
    ("1.3", "1.1.4", 1),
    ("4.2", "4.2-beta", 1),
    ("4.2-beta", "4.2", -1),
    ("4.2-alpha", "4.2-beta", -1),
    ("4.2-alpha", "4.2-alpha", 0),
    ("4.2-beta.2", "4.2-beta.1", 1),
    ("4.2-beta2", "4.2-beta1", 1),
    ("4.2-beta", "4.2-beta.2", -1),
    ("4.2-beta", "4.2-beta.foo", -1),
    ("4.2-beta.2", "4.2-beta", 1),
    ("4.2-beta.foo", "4.2-beta", 1),
    ("1.2+bar", "1.2+baz", 0),
    ("1.0.0-beta.4", "1.0.0-beta.-2", -1),
    ("1.0.0-beta.-2", "1.0.0-beta.-3", -1),
    ("1.0.0-beta.-3", "1.0.0-beta.5", 1),
];

const GREATER_THAN: &[(&str, &str, bool)] = &[
    ("1.2.3", "1.5.1", false),
    ("2.2.3", "1.5.1", true),
    ("3.2-beta", "3.2-beta", false),
    ("3.2.0-beta.1", "3.2.0-beta.5", false),
    ("3.2-beta.4", "3.2-beta.2", true),
    ("7.43.0-SNAPSHOT.99", "7.43.0-SNAPSHOT.103", false),
    ("7.43.0-SNAPSHOT.FOO", "7.43.0-SNAPSHOT.103", true),
    ("7.43.0-SNAPSHOT.99", "7.43.0-SNAPSHOT.BAR", false),
];

#[test]
fn masterminds_parse_constraint() {
    for &(input, op, version) in PARSE_CONSTRAINT {
        match (Constraint::parse(input), op) {
            (Ok(c), Some(op)) => {
                assert_eq!(c.op, op, "{input}");
                assert_eq!(c.con.to_string(), version, "{input}");
            }
            (Err(_), None) => {}
            (got, want) => panic!("{input}: got {got:?}, want op {want:?}"),
        }
    }
}

#[test]
fn masterminds_constraint_check_single_term() {
    let mut failures = Vec::new();
    for &(constraint, version, want) in CONSTRAINT_CHECK {
        let c = Constraint::parse(constraint).unwrap();
        let v = Version::parse(version).unwrap();
        // As in the Go test: a term with a prerelease opens prereleases.
        if c.check(&v, c.has_prerelease()) != want {
            failures.push(format!("{constraint:?} vs {version:?}: want {want}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn masterminds_new_constraint_shapes_and_errors() {
    for &(input, ors, count, err) in NEW_CONSTRAINT {
        match Constraints::parse(input) {
            Ok(c) => {
                assert!(!err, "{input:?} should fail");
                assert_eq!(c.shape(), (ors, count), "{input:?}");
            }
            Err(e) => assert!(err, "{input:?} failed: {e}"),
        }
    }
}

fn run_checks(table: &[(&str, &str, bool)], include_prerelease: bool) {
    let mut failures = Vec::new();
    for &(constraint, version, want) in table {
        let mut c = Constraints::parse(constraint).unwrap();
        c.include_prerelease = include_prerelease;
        let v = Version::parse(version).unwrap();
        if c.check(&v) != want {
            failures.push(format!("{constraint:?} vs {version:?}: want {want}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn masterminds_constraints_check() {
    run_checks(CONSTRAINTS_CHECK, false);
}

#[test]
fn masterminds_constraints_check_include_prerelease() {
    run_checks(CONSTRAINTS_CHECK_INCLUDE_PRE, true);
}

#[test]
fn masterminds_constraints_validate_outcomes() {
    // Validate's boolean equals Check's.
    run_checks(CONSTRAINTS_VALIDATE, false);
}

#[test]
fn masterminds_rewrite_range() {
    let p = patterns().unwrap();
    for &(input, want) in REWRITE_RANGE {
        assert_eq!(rewrite_ranges(p, input), want, "{input:?}");
    }
}

#[test]
fn masterminds_is_x() {
    for (s, want) in [
        ("A", false),
        ("%", false),
        ("X", true),
        ("x", true),
        ("*", true),
    ] {
        assert_eq!(is_x(s), want, "{s}");
    }
}

#[test]
fn masterminds_strict_new_version() {
    for &(input, err) in STRICT_NEW_VERSION {
        assert_eq!(Version::parse_strict(input).is_err(), err, "{input:?}");
    }
}

#[test]
fn masterminds_new_version_coerced() {
    for &(input, err) in NEW_VERSION {
        assert_eq!(Version::parse(input).is_err(), err, "{input:?}");
    }
}

#[test]
fn masterminds_compare_and_greater_than() {
    for &(a, b, want) in COMPARE {
        let got = Version::parse(a)
            .unwrap()
            .compare(&Version::parse(b).unwrap());
        assert_eq!(got as i8, want, "{a} vs {b}");
    }
    for &(a, b, want) in GREATER_THAN {
        let got = Version::parse(a)
            .unwrap()
            .compare(&Version::parse(b).unwrap());
        assert_eq!(got == Ordering::Greater, want, "{a} > {b}");
    }
    // Metadata is ignored, original text kept.
    let a = Version::parse("v3.2-beta+foo").unwrap();
    let b = Version::parse("3.2-beta+bar").unwrap();
    assert_eq!(a.compare(&b), Ordering::Equal);
    assert_eq!(a.original(), "v3.2-beta+foo");
    assert_eq!(a.to_string(), "3.2.0-beta+foo");
}

#[test]
fn fluxcd_pkg_parse_version() {
    for (input, err) in [
        ("v1.2.3", false),
        ("v1.0", true),
        ("v1", true),
        ("v1.2.beta", true),
        ("v1.2-5", true),
        ("v1.2-beta.5", true),
        ("\nv1.2", true),
        ("v1.2.0-x.Y.0+metadata", false),
        ("v1.2.0-x.Y.0+metadata-width-hypen", false),
        ("v1.2.3-rc1-with-hypen", false),
        ("v1.2.3.4", true),
        ("1.2.3", false),
        ("vv1.2.3", true),
        ("01.2.3", true),
    ] {
        assert_eq!(Version::parse_flux(input).is_err(), err, "{input:?}");
    }
    assert_eq!(Version::parse_flux("v1.2.3").unwrap().original(), "v1.2.3");
}

#[test]
fn constraint_errors_name_the_input() {
    let e = Constraints::parse(">= bar").unwrap_err();
    assert_eq!(e.to_string(), r#"improper constraint: ">= bar""#);
    let e = Constraints::parse("1x").unwrap_err();
    assert!(e.to_string().contains("1x.0.0"), "{e}");
    for bad in ["1.0.0p", "1x", "x1", "-1", "a", "", "*-*"] {
        assert!(Constraints::parse(bad).is_err(), "{bad:?}");
    }
    for good in ["1.0.x", "^1.0", "=1.0.0", "~1.0", ">=1.0", ">0,<2.0"] {
        assert!(Constraints::parse(good).is_ok(), "{good:?}");
    }
}
