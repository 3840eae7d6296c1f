//! Tests for reading, checking, balancing and writing SAMs.

use approx::assert_relative_eq;

use crate::sam::{balance, BalanceOptions, Imbalance, Sam, SamError};

/// The 13-account token-economy SAM (bn USD), balanced by construction.
const TOKEN_SAM: &str = "\
account,CMP,HW,PLT,APP,ENE,ROE,LAB,CAP,HH,ENT,GOV,SI,ROW
CMP,0,0,35,3,0,55,0,0,0,0,2,80,25
HW,0,0,0,0,0,0,0,0,0,0,0,130,120
PLT,0,0,0,26,0,16,0,0,1,0,1,0,16
APP,0,0,0,0,0,28,0,0,9,0,2,0,11
ENE,9,0,0,0,60,270,0,0,230,0,20,0,11
ROE,11,15,4,5,200,22000,0,0,18960,0,5075,4290,3017
LAB,8,15,12,10,70,15685,0,0,0,0,0,0,0
CAP,160,105,6,3,220,11706,0,0,0,0,0,0,0
HH,0,0,0,0,0,0,15800,2500,0,3500,3900,0,0
ENT,0,0,0,0,0,0,0,9700,0,0,0,0,0
GOV,4,5,1,1,30,1959,0,0,4200,700,0,0,0
SI,0,0,0,0,0,0,0,0,1000,5500,-2100,0,900
ROW,8,110,2,2,20,1858,0,0,1300,0,0,800,0
";

fn token_sam() -> Sam {
    Sam::from_str(TOKEN_SAM, "token_economy_sam.csv").expect("token SAM parses")
}

/// Token SAM with ROE,HH raised from 18960 to 18970.
fn perturbed_sam() -> Sam {
    let mut sam = token_sam();
    sam.set("ROE", "HH", 18970.0).unwrap();
    sam
}

fn parse_err(text: &str) -> (u64, String) {
    match Sam::from_str(text, "bad.csv") {
        Err(SamError::Parse {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, "bad.csv");
            (line, message)
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

fn opts_fixed(cells: &[(&str, &str)]) -> BalanceOptions {
    BalanceOptions {
        fixed: cells
            .iter()
            .map(|(r, c)| (r.to_string(), c.to_string()))
            .collect(),
        ..BalanceOptions::default()
    }
}

/// Sum of |new - old| over the cells that must be zero in both SAMs.
fn assert_zero_cells_stay_zero(before: &Sam, after: &Sam) {
    let n = before.n_accounts();
    for i in 0..n {
        for j in 0..n {
            if before.value(i, j) == 0.0 {
                assert_eq!(after.value(i, j), 0.0, "zero cell ({i}, {j}) changed");
            }
        }
    }
}

fn assert_exactly_balanced(sam: &Sam) {
    for k in 0..sam.n_accounts() {
        assert_eq!(
            sam.row_total(k),
            sam.col_total(k),
            "account {} not exactly balanced",
            sam.accounts()[k]
        );
    }
}

#[test]
fn token_sam_reads_and_is_exactly_balanced() {
    let sam = token_sam();
    assert_eq!(sam.n_accounts(), 13);
    assert_eq!(sam.accounts()[0], "CMP");
    assert_eq!(sam.accounts()[12], "ROW");
    assert_eq!(sam.index_of("HH"), Some(8));
    assert_eq!(sam.index_of("XYZ"), None);
    assert_eq!(sam.get("ROE", "HH"), Some(18960.0));
    assert_eq!(sam.get("SI", "GOV"), Some(-2100.0));
    assert_eq!(sam.get("ROE", "XYZ"), None);

    let expected = [
        ("CMP", 200.0),
        ("HW", 250.0),
        ("PLT", 60.0),
        ("APP", 50.0),
        ("ENE", 600.0),
        ("ROE", 53577.0),
        ("LAB", 15800.0),
        ("CAP", 12200.0),
        ("HH", 25700.0),
        ("ENT", 9700.0),
        ("GOV", 6900.0),
        ("SI", 5300.0),
        ("ROW", 4100.0),
    ];
    for (name, total) in expected {
        let k = sam.index_of(name).unwrap();
        assert_eq!(sam.row_total(k), total, "{name} row");
        assert_eq!(sam.col_total(k), total, "{name} column");
    }
    assert!(sam.imbalances(0.0).is_empty());
    sam.check_balanced(0.0).unwrap();
    assert_eq!(sam.max_abs_gap(), 0.0);
}

#[test]
fn saved_csv_file_matches_test_data() {
    // The scratch crate ships the same SAM as a file; keep the two in sync.
    // Crates without the file (e.g. tokencge itself) skip this check.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("token_economy_sam.csv");
    if path.exists() {
        assert_eq!(Sam::read(&path).unwrap(), token_sam());
    }
}

#[test]
fn off_diagonal_perturbation_is_reported() {
    let sam = perturbed_sam();
    let imbalances = sam.imbalances(1e-9);
    assert_eq!(
        imbalances,
        vec![
            Imbalance {
                account: "ROE".into(),
                row_total: 53587.0,
                col_total: 53577.0,
                gap: 10.0,
            },
            Imbalance {
                account: "HH".into(),
                row_total: 25700.0,
                col_total: 25710.0,
                gap: -10.0,
            },
        ]
    );
    let err = sam.check_balanced(1e-9).unwrap_err();
    match &err {
        SamError::Unbalanced { file, imbalances } => {
            assert_eq!(file, "token_economy_sam.csv");
            assert_eq!(imbalances.len(), 2);
        }
        other => panic!("expected Unbalanced, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("2 account(s)"), "{msg}");
    assert!(
        msg.contains("ROE: row total 53587, column total 53577, gap +10"),
        "{msg}"
    );
    assert!(
        msg.contains("HH: row total 25700, column total 25710, gap -10"),
        "{msg}"
    );
    assert!(msg.find("ROE:").unwrap() < msg.find("HH:").unwrap());
    // A tolerance wider than the relative gap accepts it.
    sam.check_balanced(1e-3).unwrap();
}

#[test]
fn diagonal_perturbation_does_not_unbalance() {
    // A diagonal cell adds to both the row and the column of its account.
    let mut sam = token_sam();
    sam.set("ROE", "ROE", 22010.0).unwrap();
    assert!(sam.imbalances(0.0).is_empty());
}

#[test]
fn imbalances_sort_by_size_then_account_order() {
    let sam = Sam::from_str("account,A,B,C\nA,0,1,0\nB,0,0,3\nC,0,0,0\n", "t").unwrap();
    // A: +1, B: 3-1 = +2, C: 0-3 = -3.
    let gaps: Vec<(String, f64)> = sam
        .imbalances(0.0)
        .into_iter()
        .map(|im| (im.account, im.gap))
        .collect();
    assert_eq!(
        gaps,
        vec![("C".into(), -3.0), ("B".into(), 2.0), ("A".into(), 1.0)]
    );
    let tie = Sam::from_str("account,A,B\nA,0,2\nB,0,0\n", "t").unwrap();
    let names: Vec<String> = tie.imbalances(0.0).into_iter().map(|i| i.account).collect();
    assert_eq!(names, vec!["A", "B"]);
}

#[test]
fn balance_restores_perturbed_sam_with_minimum_adjustment() {
    let sam = perturbed_sam();
    let (balanced, report) = balance(&sam, &BalanceOptions::default()).unwrap();
    assert_eq!(report.total_abs_adjustment, 10.0);
    assert_eq!(report.objective, 10.0);
    assert_eq!(report.max_remaining_gap, 0.0);
    // The only single-cell fix is undoing the perturbation.
    assert_eq!(report.changes.len(), 1);
    let change = &report.changes[0];
    assert_eq!((change.row.as_str(), change.col.as_str()), ("ROE", "HH"));
    assert_eq!((change.old, change.new), (18970.0, 18960.0));
    assert_eq!(balanced, token_sam());
    assert_exactly_balanced(&balanced);
    assert_zero_cells_stay_zero(&sam, &balanced);
    balanced.check_balanced(0.0).unwrap();
}

#[test]
fn balance_respects_fixed_cell() {
    let sam = perturbed_sam();
    let (balanced, report) = balance(&sam, &opts_fixed(&[("ROE", "HH")])).unwrap();
    assert_eq!(balanced.get("ROE", "HH"), Some(18970.0));
    assert_exactly_balanced(&balanced);
    assert_zero_cells_stay_zero(&sam, &balanced);
    // ROE and HH are linked only through (ROE,HH) and the zero cell (HH,ROE),
    // so with (ROE,HH) fixed the cheapest fix moves 10 along a two-cell path
    // through a third account: 20 in total, not 10.
    assert_eq!(report.total_abs_adjustment, 20.0);
    assert_eq!(report.max_remaining_gap, 0.0);
    // Among the many 20-unit paths the tie-break picks the largest cells:
    // HH receives 10 more from LAB, LAB 10 more from ROE.
    let moved: Vec<(&str, &str, f64, f64)> = report
        .changes
        .iter()
        .map(|c| (c.row.as_str(), c.col.as_str(), c.old, c.new))
        .collect();
    assert_eq!(
        moved,
        vec![
            ("LAB", "ROE", 15685.0, 15695.0),
            ("HH", "LAB", 15800.0, 15810.0),
        ]
    );
    assert_eq!(report.objective, 20.0);
    // Deterministic: the same input gives the same answer.
    let (again, report_again) = balance(&sam, &opts_fixed(&[("ROE", "HH")])).unwrap();
    assert_eq!(again, balanced);
    assert_eq!(report_again, report);
}

#[test]
fn relative_balance_prefers_large_cells() {
    let sam = perturbed_sam();
    let options = BalanceOptions {
        relative: true,
        fixed: vec![("ROE".into(), "HH".into())],
        ..BalanceOptions::default()
    };
    let (balanced, report) = balance(&sam, &options).unwrap();
    assert_exactly_balanced(&balanced);
    // Cheapest relative path: raise HH<-LAB (15800) and LAB<-ROE (15685).
    assert_eq!(balanced.get("HH", "LAB"), Some(15810.0));
    assert_eq!(balanced.get("LAB", "ROE"), Some(15695.0));
    assert_eq!(report.total_abs_adjustment, 20.0);
    assert_relative_eq!(
        report.objective,
        10.0 / 15800.0 + 10.0 / 15685.0,
        epsilon = 1e-15
    );
}

#[test]
fn balance_respects_fixed_accounts_and_signs() {
    let sam = perturbed_sam();
    let options = BalanceOptions {
        fixed: vec![("ROE".into(), "HH".into())],
        fixed_accounts: vec!["LAB".into(), "GOV".into()],
        ..BalanceOptions::default()
    };
    let (balanced, report) = balance(&sam, &options).unwrap();
    assert_exactly_balanced(&balanced);
    assert_eq!(report.total_abs_adjustment, 20.0);
    // With LAB unavailable the largest-cell path runs through CAP.
    assert_eq!(balanced.get("HH", "CAP"), Some(2510.0));
    assert_eq!(balanced.get("CAP", "ROE"), Some(11716.0));
    let n = sam.n_accounts();
    for name in ["LAB", "GOV"] {
        let k = sam.index_of(name).unwrap();
        for t in 0..n {
            assert_eq!(balanced.value(k, t), sam.value(k, t));
            assert_eq!(balanced.value(t, k), sam.value(t, k));
        }
    }
    for i in 0..n {
        for j in 0..n {
            let (a, x) = (sam.value(i, j), balanced.value(i, j));
            assert!(a * x >= 0.0, "sign of ({i}, {j}) flipped: {a} -> {x}");
        }
    }
}

#[test]
fn balance_of_balanced_sam_changes_nothing() {
    let sam = token_sam();
    let (balanced, report) = balance(&sam, &BalanceOptions::default()).unwrap();
    assert_eq!(balanced, sam);
    assert!(report.changes.is_empty());
    assert_eq!(report.total_abs_adjustment, 0.0);
    assert_eq!(report.max_remaining_gap, 0.0);
}

#[test]
fn balance_with_decimals_and_negative_cells() {
    // Gaps: A 0.5-0.1 = +0.4, B -0.4-0.4 = -0.8, C 0.1-(-0.3) = +0.4.
    let sam = Sam::from_str(
        "account,A,B,C\nA,0,0.3,0.2\nB,0.1,0,-0.5\nC,0,0.1,0\n",
        "dec",
    )
    .unwrap();
    let (balanced, report) = balance(&sam, &BalanceOptions::default()).unwrap();
    assert!(report.max_remaining_gap <= 1e-15, "{report:?}");
    balanced.check_balanced(1e-12).unwrap();
    assert_zero_cells_stay_zero(&sam, &balanced);
    // B,C stays negative or zero.
    assert!(balanced.get("B", "C").unwrap() <= 0.0);
    // Each unit moved fixes at most one unit of positive and one of negative
    // gap, so at least 0.8 must move; 0.8 is reachable.
    assert_relative_eq!(report.total_abs_adjustment, 0.8, epsilon = 1e-12);
    // New values are snapped to the data's one-decimal grid.
    for change in &report.changes {
        assert_eq!(change.new, (change.new * 10.0).round() / 10.0, "{change:?}");
    }
}

#[test]
fn single_off_diagonal_cell_balances_by_zeroing_it() {
    // The only way to balance is to remove the flow, which the sign rule allows.
    let sam = Sam::from_str("account,A,B\nA,0,5\nB,0,0\n", "two").unwrap();
    let (balanced, report) = balance(&sam, &BalanceOptions::default()).unwrap();
    assert_eq!(balanced.get("A", "B"), Some(0.0));
    assert_eq!(report.total_abs_adjustment, 5.0);
}

#[test]
fn infeasible_when_unbalanced_account_has_nothing_adjustable() {
    let sam = Sam::from_str("account,A,B\nA,0,5\nB,0,0\n", "two").unwrap();
    let err = balance(&sam, &opts_fixed(&[("A", "B")])).unwrap_err();
    match &err {
        SamError::Infeasible { file, message } => {
            assert_eq!(file, "two");
            assert!(message.contains("A (gap +5)"), "{message}");
            assert!(message.contains("B (gap -5)"), "{message}");
        }
        other => panic!("expected Infeasible, got {other:?}"),
    }
    assert!(err.to_string().starts_with("two: cannot balance the SAM"));
}

#[test]
fn infeasible_lp_because_of_sign_constraints() {
    // A: +6, B: -6. The only route back from B to A is B->C->A, whose cells
    // are -1 and can rise only to 0 (sign rule), while 6 would be needed.
    let sam = Sam::from_str("account,A,B,C\nA,0,5,0\nB,0,0,-1\nC,-1,0,0\n", "signs").unwrap();
    let err = balance(&sam, &opts_fixed(&[("A", "B")])).unwrap_err();
    match &err {
        SamError::Infeasible { message, .. } => {
            assert!(message.contains("A (gap +6)"), "{message}");
            assert!(message.contains("B (gap -6)"), "{message}");
        }
        other => panic!("expected Infeasible, got {other:?}"),
    }
}

#[test]
fn unknown_accounts_in_options_are_errors() {
    let sam = token_sam();
    let err = balance(&sam, &opts_fixed(&[("ROE", "XYZ")])).unwrap_err();
    match err {
        SamError::UnknownAccount {
            account, context, ..
        } => {
            assert_eq!(account, "XYZ");
            assert_eq!(context, "fixed cell (ROE, XYZ)");
        }
        other => panic!("expected UnknownAccount, got {other:?}"),
    }
    let options = BalanceOptions {
        fixed_accounts: vec!["NOPE".into()],
        ..BalanceOptions::default()
    };
    assert!(matches!(
        balance(&sam, &options),
        Err(SamError::UnknownAccount { account, .. }) if account == "NOPE"
    ));
}

#[test]
fn comments_and_blank_lines_are_skipped() {
    let text = "# token SAM\n\naccount,A,B\n# receipts of A\nA,1,2\n   \n,,\nB,2,3\n# end\n";
    let sam = Sam::from_str(text, "c").unwrap();
    assert_eq!(sam.accounts(), ["A", "B"]);
    assert_eq!(sam.get("B", "A"), Some(2.0));
    // Line numbers count the skipped lines.
    let (line, message) = parse_err("# c\n\naccount,A,B\n# x\nA,1,2\nB,2,zz\n");
    assert_eq!(line, 6);
    assert!(
        message.contains("cell (row B, column B) = 'zz' is not a number"),
        "{message}"
    );
}

#[test]
fn line_numbers_survive_crlf_cr_blank_lines_and_quoted_newlines() {
    let (line, _) = parse_err("account,A\r\n\r\n# c\r\n\r\nA,x\r\n");
    assert_eq!(line, 5);
    let (line, _) = parse_err("account,A\r\rA,x\r");
    assert_eq!(line, 3);
    // Quoted names span lines 2-3 (header) and 5-6 (row); the extra row is
    // on line 7.
    let (line, message) = parse_err("# c\naccount,\"A\nB\"\n\n\"A\nB\",1\nextra,2\n");
    assert_eq!(line, 7);
    assert!(message.contains("extra row 'extra'"), "{message}");
    let (line, message) = parse_err("\n\n# c\naccount,A,A\n");
    assert_eq!(line, 4);
    assert!(message.contains("duplicate account 'A'"), "{message}");
}

#[test]
fn whitespace_bom_and_crlf_are_accepted() {
    let text = "\u{feff}Account , A , B \r\n A , 1 , -2.5e1 \r\nB,+3,.5\r\n";
    let sam = Sam::from_str(text, "ws").unwrap();
    assert_eq!(sam.accounts(), ["A", "B"]);
    assert_eq!(sam.get("A", "B"), Some(-25.0));
    assert_eq!(sam.get("B", "B"), Some(0.5));
}

#[test]
fn ragged_row_is_reported_with_line_and_account() {
    let (line, message) = parse_err("account,A,B\nA,1,2\nB,3\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("row 'B' has 1 value(s), expected 2"),
        "{message}"
    );
    let (line, message) = parse_err("account,A,B\nA,1,2,7\nB,3,4\n");
    assert_eq!(line, 2);
    assert!(
        message.contains("row 'A' has 3 value(s), expected 2"),
        "{message}"
    );
}

#[test]
fn bad_cells_are_reported_with_line_and_cell() {
    let (line, message) = parse_err("account,A,B\nA,1,2\nB,3,abc\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("cell (row B, column B) = 'abc' is not a number"),
        "{message}"
    );
    let (line, message) = parse_err("account,A,B\nA,inf,2\nB,3,4\n");
    assert_eq!(line, 2);
    assert!(
        message.contains("cell (row A, column A) = 'inf' is not a finite number"),
        "{message}"
    );
    let (line, message) = parse_err("account,A,B\nA,1,\nB,3,4\n");
    assert_eq!(line, 2);
    assert!(
        message.contains("cell (row A, column B) is empty"),
        "{message}"
    );
    let (_, message) = parse_err("account,A,B\nA,NaN,1\nB,3,4\n");
    assert!(message.contains("not a finite number"), "{message}");
    let (_, message) = parse_err("account,A,B\nA,\"1,000\",1\nB,3,4\n");
    assert!(message.contains("'1,000' is not a number"), "{message}");
}

#[test]
fn header_and_row_names_must_match() {
    let (line, message) = parse_err("account,A,B\nA,1,2\nC,3,4\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("row account 'C' is not in the header (expected 'B')"),
        "{message}"
    );
    let (line, message) = parse_err("account,A,B\nB,1,2\nA,3,4\n");
    assert_eq!(line, 2);
    assert!(
        message.contains("row 'B' is out of order: expected row 'A'"),
        "{message}"
    );
    let (line, message) = parse_err("account,A,B\nA,1,2\nA,3,4\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("duplicate row for account 'A' (first given on line 2)"),
        "{message}"
    );
    let (line, message) = parse_err("account,A,B\nA,1,2\n,3,4\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("row 2 has an empty account name"),
        "{message}"
    );
}

#[test]
fn duplicate_and_empty_header_accounts_are_rejected() {
    let (line, message) = parse_err("# x\naccount,A,B,A\nA,1,2,3\nB,1,2,3\nA,1,2,3\n");
    assert_eq!(line, 2);
    assert!(
        message.contains("duplicate account 'A' in header (columns 2 and 4)"),
        "{message}"
    );
    let (_, message) = parse_err("account,A,,B\n");
    assert!(
        message.contains("header column 3 has an empty account name"),
        "{message}"
    );
    let (_, message) = parse_err("account\n");
    assert!(message.contains("header declares no accounts"), "{message}");
    let (line, message) = parse_err("CMP,0,1\nHW,1,0\n");
    assert_eq!(line, 1);
    assert!(
        message.contains("header must start with 'account' (found 'CMP')"),
        "{message}"
    );
}

#[test]
fn missing_extra_and_empty_inputs_are_rejected() {
    let (line, message) = parse_err("account,A,B,C\nA,1,2,3\nB,1,2,3\n");
    assert_eq!(line, 3);
    assert!(message.contains("file ends after 2 row(s)"), "{message}");
    assert!(message.contains("first missing row: 'C'"), "{message}");
    let (line, message) = parse_err("account,A\nA,1\nB,2\n");
    assert_eq!(line, 3);
    assert!(message.contains("extra row 'B'"), "{message}");
    let (line, message) = parse_err("");
    assert_eq!(line, 1);
    assert!(message.contains("no header line"), "{message}");
    let (_, message) = parse_err("# only comments\n\n");
    assert!(message.contains("no header line"), "{message}");
}

#[test]
fn invalid_utf8_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.csv");
    std::fs::write(&path, b"account,A,B\nA,1,2\nB\xe9,3,4\n").unwrap();
    match Sam::read(&path) {
        Err(SamError::Parse {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, path.display().to_string());
            assert_eq!(line, 3);
            assert!(message.contains("invalid UTF-8"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn garbage_inputs_never_panic() {
    let inputs = [
        "\"",
        "\"account,A\nA,1",
        "account,\"A\nA,1\n",
        ",,,\n,,,\n",
        "account,A\n\"A\"\"\",1\n",
        "account,A\nA,1\n\n\n#\n#,\n",
        "account,A\nA,--1\n",
        "account,A\nA,1e999\n",
        "\u{feff}",
        "account,A,B\nA,1,2\nB,3,4\n\"",
    ];
    for text in inputs {
        // Only the absence of a panic matters here.
        let _ = Sam::from_str(text, "garbage");
    }
}

#[test]
fn missing_file_is_an_io_error_naming_the_file() {
    let err = Sam::read(std::path::Path::new("/nonexistent/dir/sam.csv")).unwrap_err();
    assert!(matches!(err, SamError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/dir/sam.csv: I/O error"),
        "{err}"
    );
}

#[test]
fn write_then_read_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sam.csv");
    let sam = token_sam();
    sam.write_csv_atomic(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("account,CMP,HW,PLT"), "{text}");
    assert!(
        text.contains("\nROE,11,15,4,5,200,22000,0,0,18960,0,5075,4290,3017\n"),
        "{text}"
    );
    assert!(
        text.contains("\nSI,0,0,0,0,0,0,0,0,1000,5500,-2100,0,900\n"),
        "{text}"
    );
    let back = Sam::read(&path).unwrap();
    assert_eq!(back, sam);
    assert_eq!(back.origin(), path.display().to_string());

    // Awkward values and names survive too, and overwriting works.
    let odd = Sam::new(
        "odd",
        vec!["#1".into(), "a,b".into(), "q\"x".into()],
        vec![
            vec![0.1 + 0.2, -0.0, 1e-300],
            vec![1e21, -123.456, f64::MAX],
            vec![f64::MIN_POSITIVE, 2.0 / 3.0, -5.0],
        ],
    )
    .unwrap();
    odd.write_csv_atomic(&path).unwrap();
    let back = Sam::read(&path).unwrap();
    assert_eq!(back.accounts(), odd.accounts());
    for i in 0..3 {
        for j in 0..3 {
            // -0 is written as 0; everything else is bit-identical.
            let v = odd.value(i, j);
            let expected = if v == 0.0 { 0.0 } else { v };
            assert_eq!(back.value(i, j).to_bits(), expected.to_bits(), "({i}, {j})");
        }
    }
    // Only the target file is left behind: the temporary was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn write_to_missing_directory_fails_cleanly() {
    let err = token_sam()
        .write_csv_atomic(std::path::Path::new("/nonexistent/dir/out.csv"))
        .unwrap_err();
    assert!(matches!(err, SamError::Io { .. }), "{err:?}");
}

#[test]
fn new_validates_its_input() {
    let ok = Sam::new("n", vec!["A".into()], vec![vec![1.0]]).unwrap();
    assert_eq!(ok.get("A", "A"), Some(1.0));
    type Case = (Vec<String>, Vec<Vec<f64>>, &'static str);
    let cases: Vec<Case> = vec![
        (vec![], vec![], "at least one account"),
        (
            vec!["A".into(), "A".into()],
            vec![vec![0.0; 2]; 2],
            "duplicate account 'A'",
        ),
        (vec![" A".into()], vec![vec![0.0]], "whitespace"),
        (
            vec!["A".into()],
            vec![vec![0.0, 1.0]],
            "row 'A' has 2 values",
        ),
        (vec!["A".into()], vec![], "0 rows given for 1 accounts"),
        (
            vec!["A".into()],
            vec![vec![f64::NAN]],
            "not a finite number",
        ),
    ];
    for (accounts, rows, needle) in cases {
        match Sam::new("n", accounts, rows) {
            Err(SamError::Invalid { message, .. }) => {
                assert!(message.contains(needle), "{message} vs {needle}")
            }
            other => panic!("expected Invalid containing {needle}, got {other:?}"),
        }
    }
    let mut sam = token_sam();
    assert!(matches!(
        sam.set("ROE", "HH", f64::INFINITY),
        Err(SamError::Invalid { .. })
    ));
    assert!(matches!(
        sam.set("XYZ", "HH", 1.0),
        Err(SamError::UnknownAccount { .. })
    ));
    assert_eq!(sam, token_sam());
}

#[test]
fn many_perturbations_balance_within_proven_bounds() {
    // Deterministic pseudo-random integer noise on non-zero off-diagonal cells.
    let base = token_sam();
    let mut sam = base.clone();
    let n = sam.n_accounts();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut total_noise = 0.0;
    for i in 0..n {
        for j in 0..n {
            let a = base.value(i, j);
            if i == j || a == 0.0 {
                continue;
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Noise in [-3, 3], never flipping a sign.
            let noise = (state % 7) as f64 - 3.0;
            let new = a + noise;
            if new * a > 0.0 {
                sam.set(
                    &base.accounts()[i].clone(),
                    &base.accounts()[j].clone(),
                    new,
                )
                .unwrap();
                total_noise += noise.abs();
            }
        }
    }
    let gaps: f64 = (0..n)
        .map(|k| (sam.row_total(k) - sam.col_total(k)).abs())
        .sum();
    assert!(gaps > 0.0);

    let (balanced, report) = balance(&sam, &BalanceOptions::default()).unwrap();
    assert_exactly_balanced(&balanced);
    assert_zero_cells_stay_zero(&sam, &balanced);
    assert_eq!(report.max_remaining_gap, 0.0);
    // Each unit moved changes two accounts' gaps by one unit each, so at
    // least half the total gap must move; undoing the noise is feasible, so
    // the optimum is no larger than the noise.
    assert!(report.total_abs_adjustment >= gaps / 2.0, "{report:?}");
    assert!(report.total_abs_adjustment <= total_noise, "{report:?}");
    // Whole-number data give whole-number results.
    for c in &report.changes {
        assert_eq!(c.new, c.new.round(), "{c:?}");
        assert!(c.new * c.old >= 0.0, "{c:?}");
    }

    let relative = BalanceOptions {
        relative: true,
        ..BalanceOptions::default()
    };
    let (balanced, report) = balance(&sam, &relative).unwrap();
    assert_exactly_balanced(&balanced);
    assert_eq!(report.max_remaining_gap, 0.0);
}

#[test]
fn off_grid_data_still_balance_to_rounding() {
    // Thirds are on no decimal grid, so no snapping: only the LP and the
    // final exactness pass keep the result balanced.
    let t = 1.0 / 3.0;
    let sam = Sam::new(
        "thirds",
        vec!["A".into(), "B".into(), "C".into()],
        vec![
            vec![0.0, 10.0 * t, 7.0 * t],
            vec![5.0 * t, 0.0, 2.0 * t],
            vec![4.0 * t, 3.0 * t, 0.0],
        ],
    )
    .unwrap();
    assert!(sam.check_balanced(1e-6).is_err());
    let (balanced, report) = balance(&sam, &BalanceOptions::default()).unwrap();
    assert!(report.max_remaining_gap <= 1e-12, "{report:?}");
    assert_eq!(balanced.max_abs_gap(), report.max_remaining_gap);
    balanced.check_balanced(1e-12).unwrap();
    // Gaps: A +8/3, B -2/3, C -6/3; at least 8/3 must move.
    assert_relative_eq!(report.total_abs_adjustment, 8.0 * t, max_relative = 1e-9);
}
