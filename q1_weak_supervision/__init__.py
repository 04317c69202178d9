"""q1_weak_supervision"""
