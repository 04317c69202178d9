"""q3_active_learning"""
