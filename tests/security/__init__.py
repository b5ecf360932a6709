"""Security test suite (issue 10): each attack a reviewer reproduced, replayed and shown to fail."""
