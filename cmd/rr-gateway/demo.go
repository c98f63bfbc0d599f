package main

import (
	"errors"
	"fmt"
	"log/slog"
)

// checkMail refuses the mailers that print login codes in the gateway's
// log (console, file) unless demo is set, and an SMTP section without a
// server: a gateway never falls back to printing codes.
func (c *fileConfig) checkMail() error {
	switch c.Mail.Mode {
	case "console", "file":
		if !c.Demo {
			return fmt.Errorf("mail: mode %s prints every login code in the gateway's log, so it is for demos only: "+
				"configure mail.smtp (mode smtp), or set demo: true for a demo", c.Mail.Mode)
		}
	case "", "smtp":
		if c.Mail.SMTP.Host == "" {
			return errors.New("mail: no SMTP server: set mail.smtp.host (login codes are mailed), " +
				"or, for a demo only, demo: true with mail.mode console or file")
		}
	}
	return nil
}

// warnDemo says loudly, at start, that this gateway runs as a demo.
func (c *fileConfig) warnDemo(log *slog.Logger) {
	if !c.Demo {
		return
	}
	log.Warn("DEMO MODE (demo: true): NEVER RUN THIS CONFIGURATION IN PRODUCTION; "+
		"login codes may be printed in this log", "mail_mode", c.Mail.Mode)
}
