//! `plmscope describe` and `plmscope score`: LLM descriptions of an atlas's units and their
//! scores. Drawing only; the flags and the stage functions are in
//! `plmscope_pipeline::describe_run`.

use std::io::IsTerminal;

use anyhow::Result;
use plmscope_interpret::describe::DescribeEvent;
use plmscope_pipeline::describe_run::{
    describe_run, event_text, score_run, DescribeArgs, EventText, ScoreArgs,
};
use plmscope_pipeline::Progress;

use crate::progress::BarProgress;

/// Draws the events: the progress bar (with the spend so far) on a terminal, plain lines
/// otherwise.
struct Drawing {
    bar: BarProgress,
    terminal: bool,
    show_prompts: bool,
}

impl Drawing {
    fn new(show_prompts: bool) -> Self {
        Drawing {
            bar: BarProgress::new(),
            terminal: std::io::stderr().is_terminal(),
            show_prompts,
        }
    }

    fn event(&self, event: &DescribeEvent) {
        match event_text(event, self.show_prompts) {
            EventText::Status(line) => self.bar.println(&line),
            EventText::Output(text) => println!("{text}"),
            EventText::Unit {
                done,
                total,
                message,
                line,
            } => {
                if self.terminal {
                    self.bar.show(done as u64, total as u64, "units", &message);
                } else {
                    eprintln!("{line}");
                }
            }
        }
    }
}

pub fn describe(args: DescribeArgs) -> Result<()> {
    let run = args.run();
    let drawing = Drawing::new(args.show_prompts);
    let outcome = describe_run(&run, args.prompts_dir.as_deref(), &mut |e| drawing.event(e));
    drawing.bar.finish();
    print!("{}", outcome?);
    Ok(())
}

pub fn score(args: ScoreArgs) -> Result<()> {
    let (run, filter) = args.into_run();
    let drawing = Drawing::new(false);
    let outcome = score_run(&run, &filter, &mut |e| drawing.event(e));
    drawing.bar.finish();
    print!("{}", outcome?);
    Ok(())
}
