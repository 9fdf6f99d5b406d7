"""Optical flow models for the motion stage (OpenCV's DIS needs no model; RAFT does)."""
