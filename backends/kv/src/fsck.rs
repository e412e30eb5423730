//! `dpfs fsck`: checks a volume's keys against each other and repairs what it can.
