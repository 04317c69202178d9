"""q2_transfer"""
