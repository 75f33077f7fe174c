"""List hygiene on autopilot: the bounce-risk score (`risk`), the sunset policy and its
re-engagement series (`sunset`), campaign segments (`segments`), re-verification
(`reverify`), and the settings they share (`config`)."""
