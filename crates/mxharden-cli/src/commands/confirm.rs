//! `apply --confirm-timeout`: keep a firewall change only when the operator
//! confirms that they can still reach the host.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

use mxharden_apply::Applied;
use mxharden_plan::Host;

use crate::report::Report;

/// Waits `seconds` for a line `yes` on stdin when any app's firewall
/// changed, and rolls every firewall change back when it does not come. An
/// end of input counts as no confirmation.
pub fn confirm_or_roll_back(host: &Host, report: &Report, applied: &[(usize, Applied)], seconds: u64) -> anyhow::Result<()> {
    if applied.iter().all(|(_, applied)| applied.firewall_undo.is_empty()) {
        return Ok(());
    }
    eprintln!("The firewall changed. Type yes and Enter within {seconds} s to keep it; otherwise it is rolled back.");
    let (sender, receiver) = mpsc::channel();
    // The reading thread may outlive the wait; it blocks on stdin only.
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line);
        let _ = sender.send(read.map(|_| line));
    });
    let confirmed = matches!(receiver.recv_timeout(Duration::from_secs(seconds)), Ok(Ok(line)) if line.trim() == "yes");
    if confirmed {
        tracing::info!("firewall change confirmed");
        return Ok(());
    }
    let mut restored = Vec::new();
    for (index, applied) in applied {
        restored.extend(mxharden_apply::roll_back_firewall(host, &report.apps[*index].plan, applied));
    }
    anyhow::bail!(
        "the firewall change was not confirmed within {seconds} s, so it was rolled back; restored: {}",
        if restored.is_empty() { "nothing".to_owned() } else { restored.join(", ") }
    )
}
