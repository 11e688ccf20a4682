//! Checks that a screenshot of an `adloop-sim` report shows its charts painted, not just laid out: the first
//! two policies' regret lines must cross hundreds of pixel rows in their colours, and the budget areas must
//! fill far more pixels than the legend swatches alone would. `scripts/check-report-renders` runs it on a
//! headless-Chromium screenshot.
//!
//!     cargo run --example check_report_pixels -p adloop-sim -- report.png

use std::fs::File;
use std::process::ExitCode;

/// The report's policy colours (`html_report::policy_colour`): the regret chart draws policy i's line in
/// colour i, and the budget charts fill each ad's area in the colour of its launch position.
const PALETTE: [(&str, [u8; 3]); 6] = [
    ("blue", [31, 119, 180]),
    ("red", [214, 39, 40]),
    ("green", [44, 160, 44]),
    ("orange", [255, 127, 14]),
    ("purple", [148, 103, 189]),
    ("brown", [140, 86, 75]),
];
/// A row crossed only by lines holds a few pixels of their colours; a row through a filled area, hundreds.
const MOST_PIXELS_IN_A_LINE_ROW: usize = 60;
/// The first two policies' regret lines rise across the chart (a hundred rows or more); their legend swatches
/// cover two rows each.
const MINIMUM_LINE_ROWS: usize = 50;
/// The budget charts fill their plot areas (hundreds of thousands of pixels); all legend swatches together
/// cover a few thousand.
const MINIMUM_FILLED_PIXELS: usize = 100_000;
/// Anti-aliased edges blend into the background; the cores of lines and areas keep their colour.
const CHANNEL_TOLERANCE: i32 = 24;

fn near(pixel: &[u8], colour: [u8; 3]) -> bool {
    pixel
        .iter()
        .zip(colour)
        .all(|(channel, wanted)| (i32::from(*channel) - i32::from(wanted)).abs() <= CHANNEL_TOLERANCE)
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: check_report_pixels <screenshot.png>");
        return ExitCode::from(2);
    };
    let (width, pixels) = match decode_rgb(&path) {
        Ok(decoded) => decoded,
        Err(error) => {
            eprintln!("check_report_pixels: cannot read {path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let rows: Vec<&[u8]> = pixels.chunks_exact(width * 3).collect();
    // Pixels of each palette colour in each row.
    let per_colour_rows: Vec<Vec<usize>> = PALETTE
        .iter()
        .map(|(_, colour)| {
            rows.iter()
                .map(|row| row.chunks_exact(3).filter(|pixel| near(pixel, *colour)).count())
                .collect()
        })
        .collect();
    // Rows through a budget chart are filled edge to edge in palette colours; rows through the regret
    // chart hold only lines (its bands are pale tints, outside the tolerance).
    let is_outside_area_charts: Vec<bool> = (0..rows.len())
        .map(|row| per_colour_rows.iter().map(|counts| counts[row]).sum::<usize>() <= MOST_PIXELS_IN_A_LINE_ROW)
        .collect();
    let mut failed = false;
    let mut filled_pixels = 0;
    for (index, ((name, _), per_row)) in PALETTE.iter().zip(&per_colour_rows).enumerate() {
        let line_rows = per_row
            .iter()
            .zip(&is_outside_area_charts)
            .filter(|(count, outside)| **outside && **count > 0)
            .count();
        let pixels_of_colour: usize = per_row.iter().sum();
        filled_pixels += pixels_of_colour;
        println!("{name}: {pixels_of_colour} pixels, {line_rows} rows crossed like a line");
        if index < 2 && line_rows < MINIMUM_LINE_ROWS {
            eprintln!("check_report_pixels: the {name} regret line crosses only {line_rows} rows: it was not painted");
            failed = true;
        }
    }
    if filled_pixels < MINIMUM_FILLED_PIXELS {
        eprintln!(
            "check_report_pixels: only {filled_pixels} pixels in series colours: the budget areas were not painted"
        );
        failed = true;
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// The screenshot's width and its pixels as RGB bytes, row by row.
fn decode_rgb(path: &str) -> Result<(usize, Vec<u8>), Box<dyn std::error::Error>> {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(File::open(path)?));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info()?;
    let mut buffer = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let frame = reader.next_frame(&mut buffer)?;
    let bytes = &buffer[..frame.buffer_size()];
    let channels = frame.color_type.samples();
    if channels < 3 {
        return Err("a grey-scale screenshot has no chart colours".into());
    }
    let rgb = bytes
        .chunks_exact(channels)
        .flat_map(|pixel| pixel[..3].iter().copied())
        .collect();
    Ok((frame.width as usize, rgb))
}
