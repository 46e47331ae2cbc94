"""What is enforced: per direction, ordered tiers of rules over resolved address groups.

The analyzer and the dataplane compiler both read this and nothing else about policy, which is
what makes a comparison between the two meaningful.
"""
