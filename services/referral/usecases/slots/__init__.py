"""Appointment slots (号源): publishing sessions, holding and booking, cancellations and no-shows, the
waitlist and the release of unbooked family-doctor slots. One module per role; the routers and queries
import from here."""

from .booking import book, confirm_hold, hold
from .cancellations import cancel_booking, mark_no_show
from .offers import offer_to_waitlist
from .publishing import cancel_session, publish_session
from .sessions import free_counts, session_out
from .waitlist import join_waitlist, lapse_offers, release_unbooked

__all__ = [
    "book",
    "cancel_booking",
    "cancel_session",
    "confirm_hold",
    "free_counts",
    "hold",
    "join_waitlist",
    "lapse_offers",
    "mark_no_show",
    "offer_to_waitlist",
    "publish_session",
    "release_unbooked",
    "session_out",
]
