"""espomail: the email administration engine of a CRM, as a command-line tool."""

__version__ = "0.1.0"
