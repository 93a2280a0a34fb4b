"""Which tests are slow: left out of the quick subset, `python -m pytest -q -m "not slow" tests` (docs/development.md,
"Tests"). tests/conftest.py marks them `slow` at collection.

Slow: every test of a module that runs a server, a database, a broker, a browser, a real window or the models in
scripts throughout; elsewhere, each test that took 3 s or more in `python -m pytest --durations=0` on the 2-core
machine of 7 December 2026 while others worked on it (about 1 s on a quiet one). A new test is quick until listed
here; a name listed here that no test has any more stops the collection (conftest.py), so that a renamed slow test
cannot slip into the quick subset unnoticed.
"""

SLOW_MODULES = {
    "test_events.py", "test_events_hostile.py", "test_hardening.py", "test_hardening_three.py",
    "test_hardening_video.py", "test_hints.py", "test_install.py", "test_library.py", "test_live_gallery.py", "test_negatives.py", "test_negatives_postgres.py",
    "test_negatives_web.py", "test_output_escaping.py", "test_pipeline.py", "test_postgres_hostile.py",
    "test_postgres_scripts.py", "test_postgres_store.py", "test_sface.py", "test_store_hostile.py",
    "test_store_seam.py", "test_svm.py", "test_tracking.py", "test_unknowns_keeping.py", "test_web_api.py",
    "test_web_browser.py", "test_web_hardening.py", "test_web_unknowns.py", "test_service.py",
    "test_unknowns_search.py", "test_library_page.py",
    # modules that came in with the same round, after the timing above: browsers, servers, brokers, the clip
    "test_web_phone.py", "test_hints_run.py", "test_unknowns_hostile.py", "test_unknowns_video.py",
    "test_negatives_retention.py",
}
SLOW_TESTS = {
    "test_config.py": {
        "test_recognize_video_runs_a_camera_of_the_file_with_the_files_models",
    },
    "test_capture.py": {
        "test_a_frame_without_a_face_is_not_saved_and_a_video_that_ends_stops_cleanly",
        "test_a_missing_source_is_exit_2_naming_it",
        "test_an_unreadable_file_is_exit_2_naming_it",
        "test_count_must_be_positive",
        "test_names_that_are_not_a_plain_folder_are_refused_with_the_reason",
        "test_plain_names_are_accepted",
        "test_space_twice_and_esc_in_a_real_window_saves_two_photos_then_a_session_continues",
        "test_the_script_refuses_a_bad_name_before_opening_anything",
    },
    "test_detection.py": {
        "test_every_known_photo_gives_exactly_one_face_where_haar_sees_it",
    },
    "test_docs.py": {
        "test_every_relative_link_and_picture_resolves",
        "test_every_runnable_command_runs_as_written",
    },
    "test_enrolment_threads.py": {
        "test_a_single_job_or_a_single_photo_runs_in_this_thread",
        "test_two_jobs_find_faces_on_two_threads_and_give_the_vectors_of_one_in_order",
    },
    "test_evaluate.py": {
        "test_bad_input_is_a_clear_message_and_exit_2",
        "test_every_printed_figure_is_exact",
        "test_lfw_figures",
        "test_loader_rejects_everyone_seen_once_and_bad_arguments",
        "test_plots_are_pngs_made_without_a_display",
    },
    "test_evaluate_inputs.py": {
        "test_a_byte_order_mark_before_the_vectors_is_accepted",
        "test_absurd_vectors_are_refused_with_the_row_named",
        "test_the_threshold_grid_is_bounded_whatever_the_scale",
        "test_too_few_pairs_for_the_target_rate_is_a_warning_not_a_threshold",
    },
    "test_follower.py": {
        "test_run_recognition_logs_each_visit_once_at_its_arrival_and_once_at_its_departure",
        "test_the_follower_refuses_a_gallery_of_another_profile_and_swaps_in_the_next_good_one",
    },
    "test_inputs.py": {
        "test_a_dataset_path_with_a_name_too_long_is_a_clean_error",
        "test_a_dataset_that_is_a_file_says_so",
        "test_a_file_name_that_is_not_utf8_is_printed_escaped_on_a_strict_terminal",
        "test_a_photo_deleted_during_extraction_is_skipped_and_the_run_goes_on",
        "test_a_photo_with_several_faces_is_warned_and_plurals_are_right",
        "test_a_tiny_confident_face_does_not_hide_the_face_of_the_photo",
        "test_argument_values_that_make_no_sense_are_refused_by_the_parser",
        "test_capture_refuses_names_with_invisible_or_reordering_characters",
        "test_dataset_names_are_nfc_odd_folders_are_skipped_and_case_twins_warned",
        "test_help_states_the_confidence_floor_and_the_threshold_ceiling",
        "test_images_too_large_or_not_regular_files_are_skipped_with_the_reason",
        "test_person_folders_that_cannot_be_listed_are_skipped_with_the_reason",
    },
    "test_matching_scale.py": {
        "test_approximate_finds_the_exact_nearest_of_noisy_copies_with_exact_distances",
        "test_auto_searches_exactly_below_the_threshold_and_approximately_from_it",
        "test_exact_search_in_a_million_rows_matches_float64_brute_force",
    },
    "test_model_loading.py": {
        "test_an_embedder_file_that_is_another_network_is_refused_at_load",
        "test_the_right_files_load_and_pass_the_check",
        "test_the_scripts_refuse_a_wrong_embedding_model_with_one_line",
    },
    "test_modelfiles.py": {
        "test_a_first_run_where_every_address_fails_names_each_in_its_one_error",
        "test_a_first_run_whose_first_address_fails_goes_on_from_the_second",
        "test_a_model_is_hashed_once_and_a_changed_one_is_checked_again_and_refused",
        "test_a_model_path_with_a_name_over_255_bytes_is_a_clean_error",
        "test_an_offline_first_run_names_every_missing_file_at_once_and_the_ways_out",
        "test_what_can_be_downloaded_is_and_only_what_fails_is_listed",
    },
    "test_project.py": {
        "test_the_readme_test_command_says_why_tests_skip_and_how_to_give_the_assets",
    },
    "test_properties.py": {
        "test_saving_then_loading_gives_back_the_same_data",
        "test_the_name_returned_is_the_one_at_the_smallest_distance",
    },
    "test_quality.py": {
        "test_a_large_face_scores_above_the_same_face_shrunk",
        "test_a_sharp_face_scores_above_the_same_face_blurred",
        "test_enrolment_warns_of_a_poor_photo_and_not_of_good_ones",
        "test_json_lines_carry_each_faces_quality",
    },
    "test_runtimes.py": {
        "test_detection_ahead_gives_each_frame_its_own_faces_in_order_and_errors_at_their_frame",
        "test_opencvs_dnn_runs_sface_without_openvino_with_the_variable_or_for_a_users_own_file",
        "test_openvino_embeds_on_two_threads_and_on_one_when_the_process_has_one_core",
        "test_openvino_gives_opencvs_vectors_and_names_on_the_shared_photos",
        "test_the_clip_gets_the_same_names_with_openvino_and_detection_ahead",
        "test_the_kept_plain_file_is_hashed_once_and_derived_again_when_damaged",
        "test_the_plain_sface_file_derives_to_the_catalogued_checksum",
    },
    "test_store.py": {
        "test_a_classic_tutorial_file_is_described_as_recording_no_profile",
        "test_recognize_video_names_an_unknown_profile_without_suggesting_it",
    },
    "test_store_target.py": {
        "test_a_251_byte_file_name_works_and_a_256_byte_one_is_a_clean_error",
        "test_a_device_fifo_or_folder_is_never_replaced_even_with_force",
        "test_a_file_that_is_not_a_store_is_not_replaced_without_force",
        "test_a_full_disk_at_the_end_is_an_error_line_and_keeps_the_previous_file",
        "test_a_store_in_the_older_layout_is_reused_and_rewritten_as_one_array",
        "test_a_store_with_malformed_records_is_replaced_with_a_warning",
        "test_a_symbolic_link_is_followed_and_stays_a_link",
        "test_an_empty_file_is_replaced",
        "test_an_unwritable_target_is_refused_before_the_work",
    },
    "test_unknowns_cli.py": {
        "test_a_damaged_or_planted_index_is_refused_in_one_line",
        "test_errors_are_one_line_exit_2_and_change_nothing",
        "test_ignore_merge_and_regroup_from_the_terminal",
        "test_list_show_name_forget_as_a_user_runs_them",
    },
    "test_unknowns_grouping.py": {
        "test_clip_tracks_grouped_with_the_sface_margin",
        "test_regroup_is_agglomerative_clustering",
    },
    "test_unknowns_store.py": {
        "test_a_writer_killed_mid_change_leaves_a_whole_index_and_the_next_change_removes_its_leftovers",
        "test_naming_a_group_enrols_its_crops_and_its_sightings_carry_the_name",
        "test_tracks_of_one_person_share_a_group_and_different_people_do_not",
    },
    "test_verify.py": {
        "test_a_device_or_fifo_is_named_as_such_not_as_missing",
        "test_a_pairs_file_of_many_rows_of_one_photo_is_streamed",
        "test_a_photo_without_a_usable_face_is_exit_2_naming_it",
        "test_biden_in_two_people_and_biden_jpg_are_the_same_person",
        "test_json_is_one_object_with_the_verdict_distance_threshold_and_both_faces",
        "test_malformed_rows_are_an_error_naming_the_line",
        "test_obama_and_biden_are_different_people",
        "test_pairs_file_as_text_ends_with_the_summary",
        "test_pairs_file_gives_the_accuracy_errors_and_extreme_distances_measured_here",
        "test_pairs_photos_outside_images_are_skipped_as_such_and_not_read",
        "test_pairs_without_label_or_header_are_relative_to_the_pairs_file_by_default",
    },
}
