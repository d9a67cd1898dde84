//! Writes the test documents to a folder: `cargo run -p loquat-docs --example fixtures -- DIR`.

use loquat_docs::fixtures;

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fixtures".into()));
    std::fs::create_dir_all(&dir)?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("annual-report.pdf", fixtures::annual_report_pdf()),
        ("scanned.pdf", fixtures::pdf(&["", ""])),
        ("encrypted.pdf", fixtures::encrypted_pdf()),
        (
            "report.docx",
            fixtures::docx(
                &[(Some(1), "年度报告"), (None, "研发投入持续增长。")],
                &[&["年份", "研发投入"], &["2023", "12亿元"]],
            ),
        ),
        ("slides.pptx", fixtures::pptx(&[("Overview", &["Growth was strong."]), ("展望", &["继续投入研发。"])])),
        ("figures.xlsx", fixtures::xlsx(&[("R&D", &[&["Year", "Spending"], &["2023", "1.2"], &["2022", "1.04"]])])),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes)?;
        println!("{}", dir.join(name).display());
    }
    Ok(())
}
